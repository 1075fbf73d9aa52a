package s3

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/s3/s3err"
)

// FuzzParseRange: any Range header against any size gives a span inside
// the object, nothing (the whole object), or InvalidRange; never a panic.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=5-", "bytes=-5", "bytes=9-5", "bytes=0-0,2-3", "items=0-1", "bytes=-0",
		"bytes=99999999999999999999-", "bytes= 1 - 2", "bytes=-", ""} {
		f.Add(s, int64(100))
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, s string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			size = 0
		}
		off, n, ok, err := parseRange(s, size)
		switch {
		case err != nil:
			if e, isS3 := s3err.As(err); !isS3 || e.Code != s3err.InvalidRange {
				t.Fatalf("parseRange(%q, %d): error %v, want InvalidRange", s, size, err)
			}
		case ok:
			if off < 0 || n <= 0 || off+n > size {
				t.Fatalf("parseRange(%q, %d) = %d+%d: outside the object", s, size, off, n)
			}
		}
	})
}

// FuzzParseToken: a continuation token is one this gateway could have
// given (it round-trips), or InvalidArgument.
func FuzzParseToken(f *testing.F) {
	f.Add(token("key"))
	f.Add(token(""))
	f.Add(token("b/x/"))
	f.Add("!!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		after, err := parseToken(tok)
		if err != nil {
			if e, ok := s3err.As(err); !ok || e.Code != s3err.InvalidArgument {
				t.Fatalf("parseToken(%q): %v", tok, err)
			}
			return
		}
		if strings.IndexByte(after, 0) >= 0 {
			t.Fatalf("parseToken(%q) = %q: has a NUL", tok, after)
		}
		if back, err := parseToken(token(after)); err != nil || back != after {
			t.Fatalf("token of %q does not round-trip: %q, %v", after, back, err)
		}
	})
}

// FuzzObjectName: a key becomes a name inside its bucket, or an S3 error.
func FuzzObjectName(f *testing.F) {
	for _, k := range []string{"a", "a/b", "a/", "a//b", "../x", "a/./b", "/a", "", "/", strings.Repeat("x", 1025), "a\x00b", "\xff"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		n, dir, err := objectName("bucket", key)
		if err != nil {
			if _, ok := s3err.As(err); !ok {
				t.Fatalf("objectName(%q): %v is not an S3 error", key, err)
			}
			return
		}
		if _, perr := names.Parse(n.String()); perr != nil || !strings.HasPrefix(n.String(), "bucket/") {
			t.Fatalf("objectName(%q) = %q", key, n)
		}
		if dir != strings.HasSuffix(key, "/") || len(key) > MaxKey {
			t.Fatalf("objectName(%q): dir %v", key, dir)
		}
	})
}

// FuzzDeleteXML: any body of a DeleteObjects is read as a request or
// refused as MalformedXML.
func FuzzDeleteXML(f *testing.F) {
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>3</VersionId></Object></Delete>`))
	f.Add([]byte(`<Delete>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Delete><Object><Key>&a;</Key></Object></Delete>`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &request{body: io.NopCloser(bytes.NewReader(body))}
		var d deleteRequest
		if err := readXML(req, &d, false); err != nil {
			if e, ok := s3err.As(err); !ok || e.Code != s3err.MalformedXML {
				t.Fatalf("readXML: %v", err)
			}
		}
	})
}

// FuzzObjectChecksum: a completion's checksum headers are refused with
// InvalidRequest or give a checksum whose value, kept as a completion
// keeps it, passes the catalog's check; never a panic.
func FuzzObjectChecksum(f *testing.F) {
	for _, c := range [][3]string{{"crc32c", "AAAAAA==", ""}, {"crc32c", "AAAAAA==-2", "COMPOSITE"}, {"sha256", "AAAA", "FULL_OBJECT"},
		{"xxhash64", "AAAAAAAAAAA=", ""}, {"crc32", "AAAAAA==-0", ""}, {"type", "COMPOSITE", ""}, {"crc64nvme", "AAAAAAAAAAA=", "OTHER"}} {
		f.Add(c[0], c[1], c[2], 2)
	}
	f.Fuzz(func(t *testing.T, suffix, value, typ string, parts int) {
		h := http.Header{}
		h.Set("x-amz-checksum-"+suffix, value)
		if typ != "" {
			h.Set("x-amz-checksum-type", typ)
		}
		c, err := declaredObjectChecksum(h, parts)
		if err != nil {
			if e, ok := s3err.As(err); !ok || e.Code != s3err.InvalidRequest {
				t.Fatalf("error %v, want InvalidRequest", err)
			}
			return
		}
		if c == nil {
			return
		}
		kept := c.alg + ":" + c.want
		if c.composite && parts >= 1 && parts <= catalog.MaxParts {
			kept += "-" + strconv.Itoa(parts)
		}
		if err := (catalog.Meta{Checksum: kept}).Check(); err != nil {
			t.Fatalf("declared %+v keeps as %q, which the catalog refuses: %v", c, kept, err)
		}
	})
}
