package s3

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/s3/s3err"
)

// maxListKeys is S3's cap on the keys of one listing page.
const maxListKeys = 1000

// cursor is where a listing goes on: at a name (inclusive) or after it.
type cursor struct {
	name      string
	inclusive bool
}

// token encodes a cursor as a continuation token.
func (c cursor) token() string {
	flag := "x"
	if c.inclusive {
		flag = "i"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(flag + c.name))
}

func parseToken(t, base string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) == 0 || b[0] != 'i' && b[0] != 'x' || !strings.HasPrefix(string(b[1:]), base) {
		return cursor{}, s3err.New(s3err.InvalidArgument, "the continuation token is not one this gateway gave")
	}
	return cursor{name: string(b[1:]), inclusive: b[0] == 'i'}, nil
}

// listing is a ListObjects request, and listed its page.
type listing struct {
	prefix, delim string
	from          cursor
	max           int
	deleted       bool // deleted objects too (for their delete markers)
}

type listed struct {
	objects   []catalog.Version
	prefixes  []string
	truncated bool
	next      cursor // where the next page starts, when truncated
	last      string // the last key or common prefix of the page
}

var errPageFull = errors.New("page full")

// jump restarts a Range at another name.
type jump struct{ to string }

func (j *jump) Error() string { return "jump to " + j.to }

// list reads one page of a bucket's keys. With a delimiter, every key
// with the delimiter after the prefix counts once, as its common prefix,
// and the listing jumps past the rest of them (one query per prefix, not
// one row per key below it).
func (g *Gateway) list(ctx context.Context, bucket string, l listing) (listed, error) {
	var out listed
	base := bucket + "/"
	lo := base + l.prefix
	hi := catalog.PrefixEnd(lo)
	if strings.HasSuffix(l.prefix, "/") {
		// The folder the prefix names is stored without its slash, before
		// what lies below it: the range starts there, and the names in
		// between ("dir.txt" between "dir" and "dir/x") are passed over.
		lo = strings.TrimSuffix(lo, "/")
	}
	at := cursor{name: lo, inclusive: true}
	if l.from.name > lo || l.from.name == lo && !l.from.inclusive {
		at = l.from
	}
	seen := make(map[string]bool)
	count := 0
	full := func(c cursor) error {
		if count == l.max {
			out.truncated, out.next = true, c
			return errPageFull
		}
		count++
		return nil
	}
	for {
		start := at
		err := g.cat.Range(ctx, start.name, hi, l.deleted, func(v catalog.Version) error {
			if v.Name == start.name && !start.inclusive {
				return nil
			}
			key := keyOf(bucket, v)
			if !strings.HasPrefix(key, l.prefix) {
				at = cursor{name: v.Name}
				return nil
			}
			if l.delim != "" {
				rest := key[len(l.prefix):]
				if i := strings.Index(rest, l.delim); i >= 0 {
					cp := l.prefix + rest[:i+len(l.delim)]
					if seen[cp] {
						return nil
					}
					if err := full(cursor{name: v.Name, inclusive: true}); err != nil {
						return err
					}
					seen[cp] = true
					out.prefixes = append(out.prefixes, cp)
					out.last = cp
					if v.Kind == catalog.KindDir && i+len(l.delim) == len(rest) {
						// The directory entry itself: names between it and
						// what lies below it ("a.txt" between "a" and "a/x")
						// come next, so no jump.
						at = cursor{name: v.Name}
						return nil
					}
					end := catalog.PrefixEnd(base + cp)
					if end == "" || hi != "" && end >= hi {
						return errPageDone
					}
					return &jump{to: end}
				}
			}
			if err := full(cursor{name: v.Name, inclusive: true}); err != nil {
				return err
			}
			out.objects = append(out.objects, v)
			out.last = key
			at = cursor{name: v.Name}
			return nil
		})
		var j *jump
		switch {
		case errors.As(err, &j):
			at = cursor{name: j.to, inclusive: true}
			continue
		case errors.Is(err, errPageFull), errors.Is(err, errPageDone):
			return out, nil
		}
		return out, err
	}
}

var errPageDone = errors.New("listing done")

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
	base := req.bucket + "/"
	res := listBucketResult{Xmlns: xmlns, Name: req.bucket, Prefix: encode(l.prefix, enc), MaxKeys: l.max,
		Delimiter: encode(l.delim, enc), EncodingType: enc}
	if v2 {
		if t := q.Get("continuation-token"); t != "" {
			c, err := parseToken(t, base)
			if err != nil {
				return err
			}
			l.from, res.Token = c, t
		} else if s := q.Get("start-after"); s != "" {
			l.from = cursor{name: base + strings.TrimSuffix(s, "/")}
			res.StartAfter = encode(s, enc)
		}
	} else {
		marker := q.Get("marker")
		res.Marker = new(encode(marker, enc))
		if marker != "" {
			l.from = cursor{name: base + strings.TrimSuffix(marker, "/")}
			if l.delim != "" && strings.HasSuffix(marker, l.delim) {
				// A common prefix of an earlier page: go on after all of it.
				l.from = cursor{name: catalog.PrefixEnd(base + marker), inclusive: true}
			}
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
			res.NextToken = page.next.token()
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
	base := req.bucket + "/"
	res := listVersionsResult{Xmlns: xmlns, Name: req.bucket, Prefix: encode(l.prefix, enc), MaxKeys: l.max,
		Delimiter: encode(l.delim, enc), EncodingType: enc, KeyMarker: q.Get("key-marker"), VersionIDMarker: q.Get("version-id-marker")}
	if m := q.Get("key-marker"); m != "" {
		l.from = cursor{name: base + strings.TrimSuffix(m, "/")}
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
