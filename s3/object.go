package s3

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/s3/s3err"
	"github.com/loftstore/loft/s3/sigv4"
)

// storageClasses are S3's. loft keeps every object one way; a request
// may name any of them, and listings say STANDARD.
var storageClasses = []string{"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
	"GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE"}

// metaFrom reads the object headers a PUT (or a copy that replaces them)
// gives: the content type and what a version's Meta keeps.
func metaFrom(h http.Header) (string, catalog.Meta, error) {
	if sc := h.Get("x-amz-storage-class"); sc != "" && !slices.Contains(storageClasses, sc) {
		return "", catalog.Meta{}, s3err.New(s3err.InvalidStorageClass, "storage class %q is not one of S3's", clip(sc))
	}
	m := catalog.Meta{
		ContentEncoding:    sigv4.StripAWSChunked(h.Get("Content-Encoding")),
		ContentDisposition: h.Get("Content-Disposition"),
		ContentLanguage:    h.Get("Content-Language"),
		CacheControl:       h.Get("Cache-Control"),
		Expires:            h.Get("Expires"),
	}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if name, ok := strings.CutPrefix(lk, "x-amz-meta-"); ok && name != "" {
			if m.User == nil {
				m.User = make(map[string]string)
			}
			m.User[name] = strings.Join(vs, ",")
		}
	}
	size := 0
	for k, v := range m.User {
		size += len(k) + len(v)
	}
	if size > 2048 {
		return "", m, s3err.New(s3err.InvalidArgument, "user metadata of %d bytes: over S3's 2 KB", size)
	}
	if err := m.Check(); err != nil {
		return "", m, s3err.Wrap(s3err.InvalidArgument, err, "%s", oneLine(err))
	}
	return h.Get("Content-Type"), m, nil
}

// etag is a version's entity tag, quoted. A version put through S3 has
// the MD5 of its content (or a multipart form); one put by the command
// line has none, and gets the first half of its SHA-256 with a "-1"
// suffix: clients take a tag with a dash for one that is not an MD5, and
// do not compare it with their own.
func etag(v catalog.Version) string {
	if v.Meta.ETag != "" {
		return `"` + v.Meta.ETag + `"`
	}
	return `"` + hex.EncodeToString(v.SHA256[:16]) + `-1"`
}

// md5Reader hashes what it reads (when the verifier does not already:
// see newMD5Reader) and caps its size.
type md5Reader struct {
	r      io.Reader
	h      hash.Hash // nil: the verifier checks Content-MD5 and has the sum
	signed *sigv4.Request
	n      int64
	limit  int64
}

// newMD5Reader reads the request's verified body, limit bytes at most.
func newMD5Reader(req *request, body io.Reader, limit int64) *md5Reader {
	m := &md5Reader{r: body, signed: req.signed, limit: limit}
	if req.Header.Get("Content-MD5") == "" || body != req.body {
		m.h = md5.New()
	}
	return m
}

// etag returns the hex MD5 of what was read, once it was read to its end.
func (m *md5Reader) etag() string {
	if m.h == nil {
		if sum, err := base64.StdEncoding.DecodeString(m.signed.MD5); err == nil {
			return hex.EncodeToString(sum)
		}
		return "" // not reached: the verifier refused a malformed Content-MD5
	}
	return hex.EncodeToString(m.h.Sum(nil))
}

func (m *md5Reader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if m.h != nil {
		m.h.Write(p[:n])
	}
	m.n += int64(n)
	if m.n > m.limit {
		return n, s3err.New(s3err.EntityTooLarge, "the body is larger than %d bytes", m.limit)
	}
	return n, err
}

// declaredChecksum is the x-amz-checksum-* a request declared for its
// body and the verifier found true, as Meta.Checksum keeps it; "" when
// there is none. Call it once the body was read to its end.
func declaredChecksum(req *request) string {
	if req.signed == nil {
		return ""
	}
	for alg, value := range req.signed.Checksums { // one at most: the verifier refuses more
		return alg + ":" + value
	}
	return ""
}

// checksumOf splits a checksum as Meta.Checksum keeps it into its
// algorithm, value and S3's type of it: COMPOSITE for a multipart upload's
// checksum of its parts' checksums, else FULL_OBJECT ("" for none).
func checksumOf(sum string) (alg, value, typ string) {
	alg, value, ok := strings.Cut(sum, ":")
	switch {
	case !ok:
		return "", "", ""
	case strings.Contains(value, "-"):
		return alg, value, "COMPOSITE"
	}
	return alg, value, "FULL_OBJECT"
}

// checksumHeaders sets the headers S3 sends back for a checksum as
// Meta.Checksum keeps it: x-amz-checksum-ALGORITHM and its type.
func checksumHeaders(h http.Header, sum string) {
	if alg, value, typ := checksumOf(sum); alg != "" {
		h.Set("x-amz-checksum-"+strings.ToLower(alg), value)
		h.Set("x-amz-checksum-type", typ)
	}
}

// noConditionalWrite refuses the conditions S3 takes on writes (If-Match,
// If-None-Match), which loft does not evaluate yet: a lock a client
// builds on them must not seem to hold.
func noConditionalWrite(req *request) error {
	for _, h := range []string{"If-Match", "If-None-Match"} {
		if req.Header.Get(h) != "" {
			return s3err.New(s3err.NotImplemented, "conditional writes (%s) are not implemented by loft", h)
		}
	}
	return nil
}

func (g *Gateway) putObject(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	if err := noConditionalWrite(req); err != nil {
		return err
	}
	name, dir, err := objectName(req.bucket, req.key)
	if err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	if req.length > g.opts.MaxObject {
		return s3err.New(s3err.EntityTooLarge, "an object of %d bytes: over %d (use a multipart upload)", req.length, g.opts.MaxObject)
	}
	ctype, meta, err := metaFrom(req.Header)
	if err != nil {
		return err
	}
	ctx := req.Context()
	body := newMD5Reader(req, req.body, g.opts.MaxObject)
	if dir {
		// A "folder": only an empty one is a directory entry.
		if n, err := io.Copy(io.Discard, io.LimitReader(body, 1)); err != nil {
			return err
		} else if n > 0 {
			return s3err.New(s3err.InvalidArgument, "key %q ends with a slash: loft stores it as a directory, which holds no data", clip(req.key))
		}
		v, err := g.n.MakeDir(ctx, name)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`) // the MD5 of nothing
		w.Header().Set("x-amz-version-id", versionID(v))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if ctype == "" {
		ctype = "binary/octet-stream" // S3's default
	}
	v, err := g.store(req, name, body, node.PutOptions{ContentType: ctype, Meta: func() catalog.Meta {
		meta.ETag, meta.Checksum = body.etag(), declaredChecksum(req)
		return meta
	}})
	if err != nil {
		return err
	}
	checksumHeaders(w.Header(), v.Meta.Checksum)
	w.Header().Set("ETag", etag(v))
	w.Header().Set("x-amz-version-id", versionID(v))
	w.WriteHeader(http.StatusOK)
	return nil
}

// store puts body as name through the node's put pipeline (opts give the
// rest), and turns a failed read of the body into the S3 error that
// caused it: the verifying reader's, or IncompleteBody.
func (g *Gateway) store(req *request, name names.Name, body io.Reader, opts node.PutOptions) (catalog.Version, error) {
	opts.As, opts.Stdin = name, body
	if err := g.ingest.Acquire(req.Context(), 1); err != nil {
		return catalog.Version{}, s3err.Wrap(s3err.IncompleteBody, err, "the client went away while its upload waited")
	}
	defer g.ingest.Release(1)
	res, err := g.n.Put(req.Context(), []string{"-"}, opts)
	if err != nil && req.Context().Err() != nil {
		// The server cancels a request whose client stopped sending (the
		// body's read deadline) or went away.
		return catalog.Version{}, s3err.Wrap(s3err.IncompleteBody, err, "the client stopped sending the body")
	}
	if err != nil {
		return catalog.Version{}, err
	}
	if len(res.Failed) > 0 {
		f := res.Failed[0]
		if e, ok := s3err.As(f.Err); ok {
			return catalog.Version{}, e
		}
		if req.Context().Err() != nil || errors.Is(f.Err, io.ErrUnexpectedEOF) || errors.Is(f.Err, os.ErrDeadlineExceeded) {
			return catalog.Version{}, s3err.Wrap(s3err.IncompleteBody, f.Err, "the body ended before its declared length")
		}
		return catalog.Version{}, fmt.Errorf("put %s: %w", name, f.Err)
	}
	if res.Version == nil {
		return catalog.Version{}, fmt.Errorf("put %s: no version was stored", name)
	}
	return *res.Version, nil
}

// versionID is a version's S3 version ID: its number on this node.
func versionID(v catalog.Version) string { return strconv.FormatInt(v.Num, 10) }

// lookup finds the version a request names (its versionId, or the
// newest), as S3's errors describe what is missing.
func (g *Gateway) lookup(req *request, name names.Name, dir bool) (catalog.Version, error) {
	ctx := req.Context()
	var v catalog.Version
	var err error
	if id := req.URL.Query().Get("versionId"); id != "" && id != "null" {
		num, perr := strconv.ParseInt(id, 10, 64)
		if perr != nil || num <= 0 {
			return v, s3err.New(s3err.InvalidArgument, "version ID %q: not a version of this node", clip(id))
		}
		v, err = g.cat.Version(ctx, name, num)
		if errors.Is(err, catalog.ErrNotFound) {
			if err := g.needBucket(req); err != nil {
				return v, err
			}
			return v, s3err.New(s3err.NoSuchVersion, "%s has no version %d", req.key, num)
		}
		return v, err
	}
	v, err = g.cat.Head(ctx, name)
	if err == nil && (v.Kind == catalog.KindDir) != dir {
		err = catalog.ErrNotFound // "a/" names the directory entry, "a" a file
	}
	if errors.Is(err, catalog.ErrNotFound) || err == nil && v.Deleted {
		if err := g.needBucket(req); err != nil {
			return v, err
		}
		return v, s3err.New(s3err.NoSuchKey, "key %s does not exist", clip(req.key))
	}
	return v, err
}

func (g *Gateway) getObject(w http.ResponseWriter, req *request, head bool) error {
	if err := g.allow(req, catalog.AccessRead); err != nil {
		return err
	}
	name, dir, err := objectName(req.bucket, req.key)
	if err != nil {
		return err
	}
	v, err := g.lookup(req, name, dir)
	if err != nil {
		return err
	}
	if v.Deleted {
		w.Header().Set("x-amz-delete-marker", "true")
		w.Header().Set("x-amz-version-id", versionID(v))
		return s3err.New(s3err.MethodNotAllowed, "version %d of %s is a delete marker", v.Num, clip(req.key))
	}
	q := req.URL.Query()
	if req.who == nil {
		for param := range q {
			if strings.HasPrefix(param, "response-") {
				return s3err.New(s3err.InvalidRequest, "request specific response headers cannot be used for anonymous GET requests")
			}
		}
	}
	// The object's headers go out with the object only, not with an error.
	h := http.Header{}
	g.objectHeaders(h, v)
	if err := conditions(req.Header, etag(v), v.Created); err != nil {
		if e, ok := s3err.As(err); ok && e.Code == s3err.NotModified {
			for _, k := range []string{"ETag", "Last-Modified", "x-amz-version-id"} {
				w.Header().Set(k, h.Get(k))
			}
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		return err
	}
	off, n, status, err := g.span(req, h, v)
	if err != nil {
		if cr := h.Get("Content-Range"); cr != "" {
			w.Header().Set("Content-Range", cr) // the size, for a range past the end
		}
		return err
	}
	for param, header := range map[string]string{"response-content-type": "Content-Type", "response-content-language": "Content-Language",
		"response-expires": "Expires", "response-cache-control": "Cache-Control",
		"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding"} {
		if val := q.Get(param); val != "" {
			h.Set(header, val)
		}
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	// The checksum describes the whole object: sent when asked for, and
	// not with a range or a part of it.
	if strings.EqualFold(req.Header.Get("x-amz-checksum-mode"), "ENABLED") && req.Header.Get("Range") == "" && !q.Has("partNumber") {
		checksumHeaders(h, v.Meta.Checksum)
	}
	if head || n == 0 {
		maps.Copy(w.Header(), h)
		w.WriteHeader(status)
		return nil
	}
	lw := &lazyWriter{w: w, h: h, status: status}
	if err := g.n.ReadVersion(req.Context(), v, off, n, lw); err != nil {
		if !lw.wrote {
			return err // nothing of the object was sent: the error can be
		}
		// The status is sent: the only way left to say the body is bad is
		// to break the connection before its declared length.
		g.opts.Log.Warn("s3 get failed after its first bytes", "object", v.Name, "err", err, "request", req.id)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// lazyWriter sends the object's headers and status with the first bytes
// of the body, so that a read that fails before it produced any can still
// answer with an error.
type lazyWriter struct {
	w      http.ResponseWriter
	h      http.Header
	status int
	wrote  bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.wrote {
		l.wrote = true
		maps.Copy(l.w.Header(), l.h)
		l.w.WriteHeader(l.status)
	}
	return l.w.Write(p)
}

// objectHeaders sets the headers that describe version v.
func (g *Gateway) objectHeaders(h http.Header, v catalog.Version) {
	ctype := v.ContentType
	if v.Kind == catalog.KindDir {
		ctype = "application/x-directory"
	}
	if ctype == "" {
		ctype = "binary/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("ETag", etag(v))
	h.Set("Last-Modified", v.Created.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("x-amz-version-id", versionID(v))
	for header, val := range map[string]string{"Content-Encoding": v.Meta.ContentEncoding, "Content-Disposition": v.Meta.ContentDisposition,
		"Content-Language": v.Meta.ContentLanguage, "Cache-Control": v.Meta.CacheControl, "Expires": v.Meta.Expires} {
		if val != "" {
			h.Set(header, val)
		}
	}
	for k, val := range v.Meta.User {
		h["X-Amz-Meta-"+k] = []string{val} // as stored: lower case, as S3 returns it
	}
	if len(v.Meta.Parts) > 0 {
		h.Set("x-amz-mp-parts-count", strconv.Itoa(v.Meta.PartCount()))
	}
}

// conditions evaluates the conditional headers of a GET or HEAD as S3
// does: If-Match before If-Unmodified-Since, If-None-Match before
// If-Modified-Since. A failed condition is PreconditionFailed, or
// NotModified for the two that ask whether a cached copy is current.
func conditions(h http.Header, tag string, modified time.Time) error {
	modified = modified.Truncate(time.Second)
	match := h.Get("If-Match")
	if match != "" && !etagIn(match, tag) {
		return s3err.New(s3err.PreconditionFailed, "If-Match: the object's ETag is %s", tag)
	}
	if t, err := http.ParseTime(h.Get("If-Unmodified-Since")); match == "" && err == nil && modified.After(t) {
		return s3err.New(s3err.PreconditionFailed, "If-Unmodified-Since: the object was modified at %s", modified.Format(http.TimeFormat))
	}
	none := h.Get("If-None-Match")
	if none != "" && etagIn(none, tag) {
		return s3err.New(s3err.NotModified, "not modified")
	}
	if t, err := http.ParseTime(h.Get("If-Modified-Since")); none == "" && err == nil && !modified.After(t) {
		return s3err.New(s3err.NotModified, "not modified")
	}
	return nil
}

// etagIn reports whether a list of entity tags (or "*") holds tag.
func etagIn(list, tag string) bool {
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || t == tag || `"`+t+`"` == tag {
			return true
		}
	}
	return false
}

// span works out the bytes a GET returns (Range or partNumber), sets the
// headers that describe them and returns the offset, length and status.
func (g *Gateway) span(req *request, h http.Header, v catalog.Version) (off, n int64, status int, err error) {
	size := v.Size
	if pn := req.URL.Query().Get("partNumber"); pn != "" {
		num, err := strconv.Atoi(pn)
		meta := v.Meta
		if len(meta.Parts) == 0 {
			meta.AddPart(size) // a single put is its own one part
		}
		var ok bool
		if err == nil {
			off, n, ok = meta.PartSpan(num)
		}
		if !ok || off+n > size {
			return 0, 0, 0, s3err.New(s3err.InvalidArgument, "part number %q: the object has %d parts", clip(pn), meta.PartCount())
		}
		h.Set("x-amz-mp-parts-count", strconv.Itoa(meta.PartCount()))
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
		return off, n, http.StatusPartialContent, nil
	}
	rng := req.Header.Get("Range")
	if rng == "" {
		return 0, size, http.StatusOK, nil
	}
	off, n, ok, err := parseRange(rng, size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return 0, 0, 0, err
	}
	if !ok {
		return 0, size, http.StatusOK, nil // a form S3 ignores: the whole object
	}
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
	return off, n, http.StatusPartialContent, nil
}

// parseRange reads a Range header of one byte range against an object of
// size bytes. ok is false for headers S3 ignores (other units, several
// ranges, syntax it does not know); a range that starts past the end is
// InvalidRange.
func parseRange(s string, size int64) (off, n int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(s), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	invalid := s3err.New(s3err.InvalidRange, "the range %q is not satisfiable for an object of %d bytes", clip(s), size)
	if first == "" {
		k, err := strconv.ParseInt(last, 10, 64)
		if err != nil || k < 0 {
			return 0, 0, false, nil
		}
		if k == 0 || size == 0 {
			return 0, 0, false, invalid
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, 0, false, nil
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, 0, false, nil
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, invalid
	}
	return a, b - a + 1, true, nil
}

func (g *Gateway) deleteObject(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	name, dir, err := objectName(req.bucket, req.key)
	if err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	if id := req.URL.Query().Get("versionId"); id != "" {
		v, err := g.dropVersion(req, name, id)
		if err != nil {
			return err
		}
		w.Header().Set("x-amz-version-id", id)
		if v != nil && v.Deleted {
			w.Header().Set("x-amz-delete-marker", "true")
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	v, err := g.deleteName(req, name, dir)
	if err != nil {
		return err
	}
	if v != nil {
		w.Header().Set("x-amz-delete-marker", "true")
		w.Header().Set("x-amz-version-id", versionID(*v))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// dropVersion drops the version of name that id names for good, as S3
// deletes one version: the one before it becomes current when it was the
// newest. A version that does not exist is no error (S3 answers the same)
// and gives nil.
func (g *Gateway) dropVersion(req *request, name names.Name, id string) (*catalog.Version, error) {
	var num int64
	if id == "null" {
		// The version S3 would have kept without versioning: the newest.
		hv, err := g.cat.Head(req.Context(), name)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		num = hv.Num
	} else {
		var err error
		if num, err = strconv.ParseInt(id, 10, 64); err != nil || num <= 0 {
			return nil, s3err.New(s3err.InvalidArgument, "Invalid version id specified: %q", clip(id))
		}
	}
	v, err := g.n.DropVersion(req.Context(), name, num)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return nil, nil
	case errors.Is(err, catalog.ErrKept):
		return nil, s3err.Wrap(s3err.InvalidRequest, err, "%s", oneLine(err))
	case err != nil:
		return nil, err
	}
	return &v, nil
}

// deleteName tombstones the object a key names: a directory entry when
// dir (the key ended with a slash), else a file. One that does not exist,
// is deleted already or is of the other kind is no error, and is left
// alone (S3 answers the same either way).
func (g *Gateway) deleteName(req *request, name names.Name, dir bool) (*catalog.Version, error) {
	hv, err := g.cat.Head(req.Context(), name)
	if errors.Is(err, catalog.ErrNotFound) || err == nil && (hv.Deleted || (hv.Kind == catalog.KindDir) != dir) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := g.n.Delete(req.Context(), name)
	if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// maxDeleteKeys is S3's cap on the keys of one DeleteObjects.
const maxDeleteKeys = 1000

func (g *Gateway) deleteObjects(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	var del deleteRequest
	if err := readXML(req, &del, false); err != nil {
		return err
	}
	if len(del.Objects) == 0 || len(del.Objects) > maxDeleteKeys {
		return s3err.New(s3err.MalformedXML, "a delete of %d keys: want 1 to %d", len(del.Objects), maxDeleteKeys)
	}
	res := deleteResult{Xmlns: xmlns}
	for _, o := range del.Objects {
		fail := func(err error) {
			e := toS3(err, true)
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: string(e.Code), Message: e.Message})
		}
		name, dir, err := objectName(req.bucket, o.Key)
		if err != nil {
			fail(err)
			continue
		}
		done := deletedKey{Key: o.Key, VersionID: o.VersionID}
		if o.VersionID != "" {
			v, err := g.dropVersion(req, name, o.VersionID)
			if err != nil {
				fail(err)
				continue
			}
			done.DeleteMarker = v != nil && v.Deleted
		} else {
			v, err := g.deleteName(req, name, dir)
			if err != nil {
				fail(err)
				continue
			}
			if v != nil {
				done.DeleteMarker, done.DeleteMarkerVersionID = true, versionID(*v)
			}
		}
		if !del.Quiet {
			res.Deleted = append(res.Deleted, done)
		}
	}
	writeXML(w, res)
	return nil
}

func (g *Gateway) copyObject(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	if err := noConditionalWrite(req); err != nil {
		return err
	}
	to, dir, err := objectName(req.bucket, req.key)
	if err != nil {
		return err
	}
	if dir {
		return s3err.New(s3err.InvalidArgument, "cannot copy onto %q: a key ending with a slash is a directory", clip(req.key))
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	v, err := g.sourceVersion(req)
	if err != nil {
		return err
	}
	opts := node.CopyOptions{}
	switch d := req.Header.Get("x-amz-metadata-directive"); d {
	case "", "COPY":
		// Onto itself only from another version: how S3 clients restore one.
		if _, q, _ := strings.Cut(req.Header.Get("x-amz-copy-source"), "?"); v.Name == to.String() && !strings.Contains(q, "versionId=") {
			return s3err.New(s3err.InvalidRequest, "this copy request is illegal because it is trying to copy an object to itself without changing the object's metadata")
		}
	case "REPLACE":
		ctype, meta, err := metaFrom(req.Header)
		if err != nil {
			return err
		}
		meta.ETag, meta.Parts, meta.Checksum = v.Meta.ETag, v.Meta.Parts, v.Meta.Checksum // the content is the same
		if ctype == "" {
			ctype = "binary/octet-stream"
		}
		opts = node.CopyOptions{Replace: true, ContentType: ctype, Meta: meta}
	default:
		return s3err.New(s3err.InvalidArgument, "metadata directive %q: want COPY or REPLACE", clip(d))
	}
	from, _ := names.Parse(v.Name) // the catalog holds only names that parse
	nv, err := g.n.Copy(req.Context(), from, v.Num, to, opts)
	if err != nil {
		return err
	}
	w.Header().Set("x-amz-version-id", versionID(nv))
	w.Header().Set("x-amz-copy-source-version-id", versionID(v))
	writeXML(w, copyObjectResult{Xmlns: xmlns, LastModified: xmlTime(nv.Created), ETag: etag(nv), checksumXML: checksumElements(nv.Meta.Checksum)})
	return nil
}

// sourceVersion finds the version x-amz-copy-source names, which the
// request's key must be allowed to read, and checks the copy conditions.
func (g *Gateway) sourceVersion(req *request) (catalog.Version, error) {
	src := req.Header.Get("x-amz-copy-source")
	path, query, _ := strings.Cut(src, "?")
	path, err := url.PathUnescape(strings.TrimPrefix(path, "/"))
	if err != nil {
		return catalog.Version{}, s3err.New(s3err.InvalidArgument, "copy source %q is not a URL-encoded bucket/key", clip(src))
	}
	sb, sk, _ := strings.Cut(path, "/")
	if err := checkBucket(sb); err != nil {
		return catalog.Version{}, err
	}
	from, sdir, err := objectName(sb, sk)
	if err != nil {
		return catalog.Version{}, err
	}
	sreq := &request{Request: req.Request.Clone(req.Context()), bucket: sb, key: sk, who: req.who}
	sreq.URL.RawQuery = query
	if err := g.allow(sreq, catalog.AccessRead); err != nil {
		return catalog.Version{}, err
	}
	v, err := g.lookup(sreq, from, sdir)
	if err != nil {
		return v, err
	}
	if v.Kind != catalog.KindFile {
		return v, s3err.New(s3err.InvalidArgument, "copy source %q is a directory, not an object", clip(src))
	}
	return v, copyConditions(req.Header, etag(v), v.Created)
}

// copyConditions evaluates x-amz-copy-source-if-*, which fail with
// PreconditionFailed only.
func copyConditions(h http.Header, tag string, modified time.Time) error {
	c := http.Header{}
	for _, k := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if v := h.Get("x-amz-copy-source-" + k); v != "" {
			c.Set(k, v)
		}
	}
	if err := conditions(c, tag, modified); err != nil {
		return s3err.New(s3err.PreconditionFailed, "the copy source's conditions do not hold: %s", err.(*s3err.Error).Message)
	}
	return nil
}
