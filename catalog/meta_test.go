package catalog

import (
	"reflect"
	"strings"
	"testing"
)

func TestMetaChecksum(t *testing.T) {
	for _, c := range []struct {
		sum string
		ok  bool
	}{
		{"", true},
		{"CRC32C:yZRlqg==", true},
		{"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", true},
		{"CRC32:AAAAAA==-3", true},
		{"CRC32:AAAAAA==-10000", true},
		{"CRC32:AAAAAA==-10001", false}, // more parts than S3 allows
		{"CRC32:AAAAAA==-0", false},
		{"CRC32:AAAAAA==-03", false}, // one count, one spelling
		{"crc32:AAAAAA==", false},    // S3 spells algorithms in capitals
		{"CRC32:", false},
		{":AAAAAA==", false},
		{"CRC32AAAAAA==", false},
		{"CRC32:not base64!", false},
		{"CRC32:AAAA\r\nX-Injected: 1", false},
		{"SHA512:" + strings.Repeat("A", 200), false},
	} {
		m := Meta{Checksum: c.sum}
		if err := m.Check(); (err == nil) != c.ok {
			t.Errorf("Check(%q) = %v, want ok %v", c.sum, err, c.ok)
		}
	}
	if (Meta{Checksum: "CRC32:AAAAAA=="}).IsZero() {
		t.Error("a Meta with only a checksum is zero: it would not be stored")
	}
}

// FuzzParseMeta: metadata comes from peers. What ParseMeta accepts passes
// Check and survives an encode and parse unchanged; nothing panics.
func FuzzParseMeta(f *testing.F) {
	for _, s := range []string{"", "{}", `{"etag":"d41d8cd98f00b204e9800998ecf8427e"}`,
		`{"etag":"x-2","parts":[[5242880,1],[3,1]],"checksum":"CRC32:AAAAAA==-2"}`,
		`{"user":{"a":"b","c-d":"e f"},"cache_control":"no-cache","checksum":"SHA1:2jmj7l5rSw0yVb/vlWAYkK/YBwk="}`,
		`{"user":{"A":"b"}}`, `{"parts":[[-1,1]]}`, `{"checksum":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMeta(s)
		if err != nil {
			return
		}
		if err := m.Check(); err != nil {
			t.Fatalf("ParseMeta(%q) accepted metadata that Check refuses: %v", s, err)
		}
		again, err := ParseMeta(m.Encode())
		if err != nil {
			t.Fatalf("the encoding of accepted metadata %q does not parse: %v", m.Encode(), err)
		}
		if !reflect.DeepEqual(normal(again), normal(m)) {
			t.Fatalf("round trip changed metadata: %+v became %+v", m, again)
		}
	})
}

// normal treats an empty user map as none, which encodings do too.
func normal(m Meta) Meta {
	if len(m.User) == 0 {
		m.User = nil
	}
	if len(m.Parts) == 0 {
		m.Parts = nil
	}
	return m
}
