package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/s3/s3err"
)

// maxListKeys is S3's cap on the keys of one listing page.
const maxListKeys = 1000

// A listing returns keys in S3's order, the byte order of keys. Names sort
// the same way but for a folder: its entry is stored as "b" and its key is
// "b/", which sorts after "b.txt" (whose name sorts after "b"). The scan
// of names holds a folder's key back until the first key after it, so
// that what a page gives, and where the next page starts (a key: V1's
// marker, V2's token, start-after), are all in key order.

// token encodes the key a listing goes on after as a continuation token.
func token(after string) string { return base64.RawURLEncoding.EncodeToString([]byte("k" + after)) }

func parseToken(t string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) == 0 || b[0] != 'k' || bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b) {
		return "", s3err.New(s3err.InvalidArgument, "the continuation token is not one this gateway gave")
	}
	return string(b[1:]), nil
}

// listing is a ListObjects request, and listed its page.
type listing struct {
	prefix, delim string
	after         string // the key (or common prefix) the listing goes on after
	max           int
	deleted       bool // deleted objects too (for their delete markers)
}

type listed struct {
	objects   []catalog.Version
	prefixes  []string
	truncated bool
	last      string // the last key or common prefix of the page: where the next goes on
}

var (
	errPageFull = errors.New("page full")
	errPageDone = errors.New("listing done")
)

// jump restarts a Range at another name.
type jump struct{ to string }

func (j *jump) Error() string { return "jump to " + j.to }

// scanFrom is the first name whose key can lie after key: key itself,
// unless a folder's name is a prefix of it followed by a byte that sorts
// below the slash ("b" for "b.txt": the folder's key "b/" comes after
// "b.txt"). Only such folders are looked up, one query each, so a page
// never reads again what earlier pages gave.
func (g *Gateway) scanFrom(ctx context.Context, base, key string, deleted bool) (string, error) {
	for i := 1; i < len(key); i++ {
		if key[i] >= '/' {
			continue
		}
		n, err := names.Parse(base + key[:i])
		if err != nil {
			continue
		}
		hv, err := g.cat.Head(ctx, n)
		switch {
		case err == nil && hv.Kind == catalog.KindDir && (deleted || !hv.Deleted):
			return n.String(), nil
		case err != nil && !errors.Is(err, catalog.ErrNotFound):
			return "", err
		}
	}
	return base + key, nil
}

// list reads one page of a bucket's keys. With a delimiter, every key
// with the delimiter after the prefix counts once, as its common prefix,
// and the listing jumps past the rest of them (one query per prefix, not
// one row per key below it).
func (g *Gateway) list(ctx context.Context, bucket string, l listing) (listed, error) {
	var out listed
	base := bucket + "/"
	lo := base + strings.TrimSuffix(l.prefix, "/") // a folder the prefix names is stored without its slash
	hi := catalog.PrefixEnd(base + l.prefix)
	if l.after > l.prefix {
		from, err := g.scanFrom(ctx, base, l.after, l.deleted)
		if err != nil {
			return out, err
		}
		lo = max(lo, from)
	}
	seen := make(map[string]bool)
	var pending []catalog.Version // folders held back, the smallest key on top
	count := 0
	// give considers one key; a jump error restarts the scan.
	give := func(key string, v catalog.Version) error {
		if !strings.HasPrefix(key, l.prefix) || l.after != "" && key <= l.after {
			return nil
		}
		if l.delim != "" {
			rest := key[len(l.prefix):]
			if i := strings.Index(rest, l.delim); i >= 0 {
				cp := l.prefix + rest[:i+len(l.delim)]
				if !seen[cp] && (l.after == "" || cp > l.after) {
					if count == l.max {
						out.truncated = true
						return errPageFull
					}
					count++
					seen[cp] = true
					out.prefixes = append(out.prefixes, cp)
					out.last = cp
				}
				if v.Kind == catalog.KindDir && i+len(l.delim) == len(rest) {
					return nil // the folder itself: its keys come next, in the scan
				}
				end := catalog.PrefixEnd(base + cp)
				if end == "" || hi != "" && end >= hi {
					return errPageDone
				}
				return &jump{to: end}
			}
		}
		if count == l.max {
			out.truncated = true
			return errPageFull
		}
		count++
		out.objects = append(out.objects, v)
		out.last = key
		return nil
	}
	// flush gives the folders held back whose keys sort before key ("":
	// all of them).
	flush := func(key string) error {
		for len(pending) > 0 {
			top := pending[len(pending)-1]
			k := keyOf(bucket, top)
			if key != "" && k >= key {
				return nil
			}
			pending = pending[:len(pending)-1]
			var j *jump
			if err := give(k, top); errors.As(err, &j) && key == "" {
				continue // the scan is over: nothing to jump over
			} else if err != nil {
				return err
			}
		}
		return nil
	}
	at := lo
	for {
		err := g.cat.Range(ctx, at, hi, l.deleted, func(v catalog.Version) error {
			key := keyOf(bucket, v)
			if err := flush(key); err != nil {
				return err
			}
			if v.Kind == catalog.KindDir {
				pending = append(pending, v)
				return nil
			}
			return give(key, v)
		})
		var j *jump
		if errors.As(err, &j) {
			at = j.to
			continue
		}
		if err == nil {
			err = flush("")
		}
		if errors.Is(err, errPageFull) || errors.Is(err, errPageDone) {
			return out, nil
		}
		return out, err
	}
}

func (g *Gateway) listObjects(w http.ResponseWriter, req *request, v2 bool) error {
	if err := g.allow(req, catalog.AccessRead); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	q := req.URL.Query()
	l, enc, err := listParams(q)
	if err != nil {
		return err
	}
	res := listBucketResult{Xmlns: xmlns, Name: req.bucket, Prefix: encode(l.prefix, enc), MaxKeys: l.max,
		Delimiter: encode(l.delim, enc), EncodingType: enc}
	if v2 {
		if t := q.Get("continuation-token"); t != "" {
			after, err := parseToken(t)
			if err != nil {
				return err
			}
			l.after, res.Token = after, t
		} else if s := q.Get("start-after"); s != "" {
			l.after = s
			res.StartAfter = encode(s, enc)
		}
	} else {
		marker := q.Get("marker")
		res.Marker = new(encode(marker, enc))
		if marker != "" {
			l.after = marker
		}
	}
	page, err := g.list(req.Context(), req.bucket, l)
	if err != nil {
		return err
	}
	res.IsTruncated = page.truncated
	fetchOwner := !v2 || q.Get("fetch-owner") == "true"
	for _, v := range page.objects {
		o := objectInfo{Key: encode(keyOf(req.bucket, v), enc), LastModified: xmlTime(v.Created), ETag: etag(v),
			Size: v.Size, StorageClass: "STANDARD"}
		if fetchOwner {
			ow := g.owner()
			o.Owner = &ow
		}
		res.Contents = append(res.Contents, o)
	}
	for _, p := range page.prefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: encode(p, enc)})
	}
	if v2 {
		n := len(page.objects) + len(page.prefixes)
		res.KeyCount = &n
		if page.truncated {
			res.NextToken = token(page.last)
		}
	} else if page.truncated && l.delim != "" {
		res.NextMarker = encode(page.last, enc)
	}
	writeXML(w, res)
	return nil
}

// listParams reads the parameters the listings share.
func listParams(q url.Values) (listing, string, error) {
	l := listing{prefix: q.Get("prefix"), delim: q.Get("delimiter"), max: maxListKeys}
	if s := q.Get("max-keys"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return l, "", s3err.New(s3err.InvalidArgument, "max-keys %q: want a whole number", clip(s))
		}
		l.max = min(n, maxListKeys)
	}
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return l, "", s3err.New(s3err.InvalidArgument, "encoding-type %q: want url", clip(enc))
	}
	return l, enc, nil
}

// encode writes a key for a listing with encoding-type url: escaped as in
// a URL's query, with slashes kept and spaces as %20, which clients decode
// whether they treat "+" as a space or not.
func encode(s, enc string) string {
	if enc != "url" {
		return s
	}
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	return strings.ReplaceAll(e, "%2F", "/")
}

// listVersions answers ListObjectVersions: every version of the keys of
// one page, newest first, deletions as delete markers. A bucket whose
// versioning is Suspended shows only the newest versions, as S3 shows
// history it does not keep.
func (g *Gateway) listVersions(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessRead); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	ctx := req.Context()
	q := req.URL.Query()
	l, enc, err := listParams(q)
	if err != nil {
		return err
	}
	l.deleted = true
	res := listVersionsResult{Xmlns: xmlns, Name: req.bucket, Prefix: encode(l.prefix, enc), MaxKeys: l.max,
		Delimiter: encode(l.delim, enc), EncodingType: enc, KeyMarker: q.Get("key-marker"), VersionIDMarker: q.Get("version-id-marker")}
	if m := q.Get("key-marker"); m != "" {
		l.after = m
	}
	b, err := g.cat.Bucket(ctx, req.bucket)
	if err != nil {
		return err
	}
	page, err := g.list(ctx, req.bucket, l)
	if err != nil {
		return err
	}
	for _, head := range page.objects {
		n, _ := names.Parse(head.Name) // the catalog holds only names that parse
		vs, err := g.cat.Versions(ctx, n)
		if err != nil {
			return err
		}
		if b.Versioning == "Suspended" && len(vs) > 1 {
			vs = vs[:1]
		}
		for i, v := range vs {
			ov := objectVersion{Key: encode(keyOf(req.bucket, head), enc), VersionID: versionID(v), IsLatest: i == 0,
				LastModified: xmlTime(v.Created), Owner: g.owner()}
			if v.Deleted {
				ov.XMLName.Local = "DeleteMarker"
			} else {
				ov.XMLName.Local = "Version"
				ov.ETag, ov.Size, ov.StorageClass = etag(v), &v.Size, "STANDARD"
			}
			res.Versions = append(res.Versions, ov)
		}
	}
	for _, p := range page.prefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: encode(p, enc)})
	}
	if page.truncated {
		res.IsTruncated = true
		res.NextKeyMarker = encode(page.last, enc)
	}
	writeXML(w, res)
	return nil
}
