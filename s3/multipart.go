package s3

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/s3/s3err"
)

// Multipart uploads: a part is stored as chunks as it arrives (through
// the node's put pipeline, committed as a part of the upload rather than
// as a version), so an interrupted upload resumes with the parts already
// there; completing makes the parts' chunks, in order, a version of the
// key, without copying data.

// multipart dispatches the requests of a key that name an upload.
func (g *Gateway) multipart(w http.ResponseWriter, req *request) error {
	q := req.URL.Query()
	_, hasUploads := q["uploads"]
	id := q.Get("uploadId")
	switch {
	case req.Method == http.MethodPost && hasUploads:
		return g.createUpload(w, req)
	case id == "":
		return s3err.New(s3err.InvalidRequest, "a multipart request needs an uploadId")
	case req.Method == http.MethodPut && req.Header.Get("x-amz-copy-source") != "":
		return g.uploadPart(w, req, id, true)
	case req.Method == http.MethodPut:
		return g.uploadPart(w, req, id, false)
	case req.Method == http.MethodPost:
		return g.completeUpload(w, req, id)
	case req.Method == http.MethodDelete:
		return g.abortUpload(w, req, id)
	case req.Method == http.MethodGet:
		return g.listParts(w, req, id)
	}
	return s3err.New(s3err.MethodNotAllowed, "%s is not allowed on an upload", req.Method)
}

func (g *Gateway) createUpload(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	name, dir, err := objectName(req.bucket, req.key)
	if err != nil {
		return err
	}
	if dir {
		return s3err.New(s3err.InvalidArgument, "key %q ends with a slash: loft stores it as a directory, which holds no data", clip(req.key))
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	ctype, meta, err := metaFrom(req.Header)
	if err != nil {
		return err
	}
	if ctype == "" {
		ctype = "binary/octet-stream"
	}
	u := catalog.Upload{ID: random(32, "0123456789abcdef"), Name: name.String(), ContentType: ctype, Meta: meta}
	if err := g.cat.CreateUpload(req.Context(), u); err != nil {
		return err
	}
	writeXML(w, initiateMultipartUploadResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: u.ID})
	return nil
}

// theUpload finds upload id and checks that it is the request's key's.
func (g *Gateway) theUpload(req *request, id string) (catalog.Upload, names.Name, error) {
	name, _, err := objectName(req.bucket, req.key)
	if err != nil {
		return catalog.Upload{}, name, err
	}
	u, err := g.cat.Upload(req.Context(), id)
	if errors.Is(err, catalog.ErrNoUpload) || err == nil && u.Name != name.String() {
		return u, name, s3err.New(s3err.NoSuchUpload, "upload %s of %s does not exist: never made, completed or aborted", clip(id), clip(req.key))
	}
	return u, name, err
}

func (g *Gateway) uploadPart(w http.ResponseWriter, req *request, id string, copying bool) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	pn := req.URL.Query().Get("partNumber")
	num, err := strconv.Atoi(pn)
	if err != nil || num < 1 || num > catalog.MaxParts {
		return s3err.New(s3err.InvalidArgument, "part number %q: want 1 to %d", clip(pn), catalog.MaxParts)
	}
	_, name, err := g.theUpload(req, id)
	if err != nil {
		return err
	}
	var src io.Reader = req.body
	if copying {
		r, err := g.copySource(req)
		if err != nil {
			return err
		}
		defer r.Close()
		src = r
	} else if req.length > g.opts.MaxObject {
		return s3err.New(s3err.EntityTooLarge, "a part of %d bytes: over %d", req.length, g.opts.MaxObject)
	}
	body := newMD5Reader(req, src, g.opts.MaxObject)
	v, err := g.store(req, name, body, node.PutOptions{
		Meta: func() catalog.Meta { return catalog.Meta{ETag: body.etag()} },
		Commit: func(ctx context.Context, tx *catalog.Tx, nv catalog.NewVersion) (catalog.Added, error) {
			return tx.AddPart(ctx, id, num, nv)
		}})
	if errors.Is(err, catalog.ErrNoUpload) {
		return s3err.Wrap(s3err.NoSuchUpload, err, "upload %s was completed or aborted while the part was sent", clip(id))
	}
	if err != nil {
		return err
	}
	tag := `"` + v.Meta.ETag + `"`
	checksumHeaders(w.Header(), declaredChecksum(req))
	if copying {
		writeXML(w, copyPartResult{Xmlns: xmlns, LastModified: xmlTime(v.Created), ETag: tag})
		return nil
	}
	w.Header().Set("ETag", tag)
	w.WriteHeader(http.StatusOK)
	return nil
}

// copySource opens the source of an UploadPartCopy: the object (and
// range) x-amz-copy-source(-range) name, read through a pipe.
func (g *Gateway) copySource(req *request) (io.ReadCloser, error) {
	v, err := g.sourceVersion(req)
	if err != nil {
		return nil, err
	}
	off, n := int64(0), v.Size
	if r := req.Header.Get("x-amz-copy-source-range"); r != "" {
		var ok bool
		off, n, ok, err = parseRange(r, v.Size)
		if err != nil || !ok || strings.HasPrefix(strings.TrimPrefix(r, "bytes="), "-") {
			return nil, s3err.New(s3err.InvalidArgument, "copy source range %q: want bytes=FIRST-LAST inside the object's %d bytes", clip(r), v.Size)
		}
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(g.n.ReadVersion(req.Context(), v, off, n, pw))
	}()
	return pr, nil
}

func (g *Gateway) completeUpload(w http.ResponseWriter, req *request, id string) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	if err := noConditionalWrite(req); err != nil {
		return err
	}
	_, name, err := g.theUpload(req, id)
	if err != nil {
		return err
	}
	var body completeMultipartUpload
	if err := readXML(req, &body, false); err != nil {
		return err
	}
	if len(body.Parts) == 0 || len(body.Parts) > catalog.MaxParts {
		return s3err.New(s3err.MalformedXML, "a completion of %d parts: want 1 to %d", len(body.Parts), catalog.MaxParts)
	}
	list := make([]catalog.CompletePart, len(body.Parts))
	nums := make([]int, len(body.Parts))
	for i, p := range body.Parts {
		list[i] = catalog.CompletePart{Num: p.PartNumber, ETag: strings.Trim(p.ETag, `"`)}
		nums[i] = p.PartNumber
	}
	declared, err := declaredObjectChecksum(req.Header, len(nums))
	if err != nil {
		return err
	}
	// The object's SHA-256 is read back from the parts' chunks (parts come
	// in any order and at once, so it cannot be summed as they arrive),
	// and so is the checksum the client declared, in the same pass. The
	// transaction checks each part's ETag again: a part replaced meanwhile
	// with other content fails the completion, not the hash.
	read := func(ctx context.Context, nums []int, w io.Writer) error {
		refs, err := g.cat.PartChunks(ctx, id, nums)
		if err != nil {
			return err
		}
		return g.n.ReadChunks(ctx, "upload "+id, refs, w)
	}
	h := sha256.New()
	var checksum string
	if declared != nil {
		checksum, err = declared.check(req.Context(), nums, read, h)
	} else {
		err = read(req.Context(), nums, h)
	}
	if err != nil {
		return err
	}
	var sum catalog.Digest
	h.Sum(sum[:0])
	var a catalog.Added
	err = g.cat.Tx(req.Context(), func(tx *catalog.Tx) error {
		var err error
		a, err = tx.CompleteUpload(req.Context(), id, list, sum, checksum)
		return err
	})
	switch {
	case errors.Is(err, catalog.ErrPartTooSmall):
		return s3err.Wrap(s3err.EntityTooSmall, err, "%s", oneLine(err))
	case errors.Is(err, catalog.ErrBadPart) && strings.Contains(err.Error(), "ascending"):
		return s3err.Wrap(s3err.InvalidPartOrder, err, "%s", oneLine(err))
	case errors.Is(err, catalog.ErrBadPart):
		return s3err.Wrap(s3err.InvalidPart, err, "%s", oneLine(err))
	case errors.Is(err, catalog.ErrNoUpload):
		return s3err.Wrap(s3err.NoSuchUpload, err, "upload %s was completed or aborted meanwhile", clip(id))
	case err != nil:
		return err
	}
	if a.Version.Name != name.String() {
		return fmt.Errorf("upload %s completed as %s, not %s", id, a.Version.Name, name)
	}
	w.Header().Set("x-amz-version-id", versionID(a.Version))
	checksumHeaders(w.Header(), a.Version.Meta.Checksum)
	writeXML(w, completeMultipartUploadResult{Xmlns: xmlns, Location: "/" + req.bucket + "/" + req.key,
		Bucket: req.bucket, Key: req.key, ETag: etag(a.Version), checksumXML: checksumElements(a.Version.Meta.Checksum)})
	return nil
}

func (g *Gateway) abortUpload(w http.ResponseWriter, req *request, id string) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	if _, _, err := g.theUpload(req, id); err != nil {
		return err
	}
	err := g.cat.Tx(req.Context(), func(tx *catalog.Tx) error { return tx.AbortUpload(req.Context(), id) })
	if errors.Is(err, catalog.ErrNoUpload) {
		return s3err.Wrap(s3err.NoSuchUpload, err, "upload %s does not exist", clip(id))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *Gateway) listParts(w http.ResponseWriter, req *request, id string) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	if _, _, err := g.theUpload(req, id); err != nil {
		return err
	}
	q := req.URL.Query()
	after, _ := strconv.Atoi(q.Get("part-number-marker"))
	max := 1000
	if s := q.Get("max-parts"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return s3err.New(s3err.InvalidArgument, "max-parts %q: want a whole number", clip(s))
		}
		max = min(n, 1000)
	}
	ps, err := g.cat.Parts(req.Context(), id, after, max+1)
	if err != nil {
		return err
	}
	res := listPartsResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: id, Initiator: g.owner(), Owner: g.owner(),
		StorageClass: "STANDARD", PartNumberMarker: after, MaxParts: max}
	if len(ps) > max {
		ps, res.IsTruncated = ps[:max], true
	}
	for _, p := range ps {
		res.Parts = append(res.Parts, partInfo{PartNumber: p.Num, LastModified: xmlTime(p.Created), ETag: `"` + p.ETag + `"`, Size: p.Size})
		res.NextPartNumberMarker = p.Num
	}
	writeXML(w, res)
	return nil
}

func (g *Gateway) listUploads(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessWrite); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	q := req.URL.Query()
	prefix, delim, enc := q.Get("prefix"), q.Get("delimiter"), q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return s3err.New(s3err.InvalidArgument, "encoding-type %q: want url", clip(enc))
	}
	max := 1000
	if s := q.Get("max-uploads"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return s3err.New(s3err.InvalidArgument, "max-uploads %q: want a whole number", clip(s))
		}
		max = min(n, 1000)
	}
	base := req.bucket + "/"
	lo := base + prefix
	afterName, afterID := "", q.Get("upload-id-marker")
	if m := q.Get("key-marker"); m != "" {
		afterName = base + m
		if afterID == "" {
			afterID = "\xff" // after every upload of that key
		}
	}
	us, err := g.cat.Uploads(req.Context(), lo, catalog.PrefixEnd(lo), afterName, afterID, max+1)
	if err != nil {
		return err
	}
	res := listMultipartUploadsResult{Xmlns: xmlns, Bucket: req.bucket, KeyMarker: encode(q.Get("key-marker"), enc),
		UploadIDMarker: q.Get("upload-id-marker"), Prefix: encode(prefix, enc), Delimiter: encode(delim, enc), EncodingType: enc, MaxUploads: max}
	if len(us) > max {
		us, res.IsTruncated = us[:max], true
	}
	seen := map[string]bool{}
	for _, u := range us {
		key := strings.TrimPrefix(u.Name, base)
		if delim != "" {
			if i := strings.Index(key[len(prefix):], delim); i >= 0 {
				cp := key[:len(prefix)+i+len(delim)]
				if !seen[cp] {
					seen[cp] = true
					res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: encode(cp, enc)})
				}
				continue
			}
		}
		res.Uploads = append(res.Uploads, uploadInfo{Key: encode(key, enc), UploadID: u.ID, Initiator: g.owner(), Owner: g.owner(),
			StorageClass: "STANDARD", Initiated: xmlTime(u.Created)})
		res.NextKeyMarker, res.NextUploadIDMarker = encode(key, enc), u.ID
	}
	writeXML(w, res)
	return nil
}
