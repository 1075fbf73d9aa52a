package catalog

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/loftstore/loft/fault"
)

// Meta is what a version keeps of the headers an S3 client gave its
// object; the command line's puts leave it empty. It travels with the
// version to peers, so it is bounded and checked like the rest of one.
type Meta struct {
	// ETag is S3's entity tag without quotes: the hex MD5 of the content
	// for a single put, "<hex>-<parts>" for a multipart upload.
	ETag               string `json:"etag,omitempty"`
	ContentEncoding    string `json:"content_encoding,omitempty"`
	ContentDisposition string `json:"content_disposition,omitempty"`
	ContentLanguage    string `json:"content_language,omitempty"`
	CacheControl       string `json:"cache_control,omitempty"`
	Expires            string `json:"expires,omitempty"`
	// User holds the x-amz-meta-* headers, keyed by the lower-case name
	// after the prefix.
	User map[string]string `json:"user,omitempty"`
	// Parts are the sizes of a multipart upload's parts, in order, for
	// GetObject's partNumber, as runs of equal sizes ([size, count]
	// pairs): an upload's parts are mostly of one size, and 10,000 of
	// them fit in a few bytes.
	Parts [][2]int64 `json:"parts,omitempty"`
	// Checksum is the checksum of the content the client declared (an
	// x-amz-checksum-* header or trailer) and loft verified, as
	// "ALGORITHM:VALUE" with S3's spelling of both ("CRC32C:yZRlqg==");
	// a multipart upload's composite of N parts' checksums ends in "-N".
	Checksum string `json:"checksum,omitempty"`
}

// maxChecksum bounds Meta.Checksum: the longest algorithm name and a
// base64 SHA-512 (88 characters) with a part count.
const maxChecksum = 128

// AddPart appends a part of size bytes to m.Parts.
func (m *Meta) AddPart(size int64) {
	if n := len(m.Parts); n > 0 && m.Parts[n-1][0] == size {
		m.Parts[n-1][1]++
		return
	}
	m.Parts = append(m.Parts, [2]int64{size, 1})
}

// PartCount returns the number of parts.
func (m Meta) PartCount() int {
	n := 0
	for _, r := range m.Parts {
		n += int(r[1])
	}
	return n
}

// PartSpan returns the offset and size of part num (from 1).
func (m Meta) PartSpan(num int) (off, size int64, ok bool) {
	for _, r := range m.Parts {
		if num <= int(r[1]) {
			return off + int64(num-1)*r[0], r[0], true
		}
		num -= int(r[1])
		off += r[0] * r[1]
	}
	return 0, 0, false
}

// checkSize refuses parts that do not add up to the version's size.
func (m Meta) checkSize(size int64) error {
	if len(m.Parts) == 0 {
		return nil
	}
	var sum int64
	for _, r := range m.Parts {
		sum += r[0] * r[1]
	}
	if sum != size {
		return fault.E(fault.Invalid, "object metadata: parts of %d bytes in all for an object of %d", sum, size)
	}
	return nil
}

// MaxMeta bounds a version's encoded Meta (S3 allows 2 KB of user
// metadata; the rest are a few short headers and the part sizes).
const MaxMeta = 64 << 10

// IsZero reports whether m holds nothing.
func (m Meta) IsZero() bool {
	return m.ETag == "" && m.ContentEncoding == "" && m.ContentDisposition == "" && m.ContentLanguage == "" &&
		m.CacheControl == "" && m.Expires == "" && len(m.User) == 0 && len(m.Parts) == 0 && m.Checksum == ""
}

// Encode returns m's stored and wire form: "" for the zero Meta, else JSON
// (map keys sorted, so equal metadata encode equally).
func (m Meta) Encode() string {
	if m.IsZero() {
		return ""
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "" // strings, a map of strings and integers always marshal
	}
	return string(b)
}

// ParseMeta decodes and checks an encoded Meta, as read from the catalog
// or received from a peer.
func ParseMeta(s string) (Meta, error) {
	var m Meta
	if s == "" {
		return m, nil
	}
	if len(s) > MaxMeta {
		return m, fault.E(fault.Invalid, "object metadata of %d bytes: over %d", len(s), MaxMeta)
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return m, fault.E(fault.Invalid, "object metadata: %v", err)
	}
	return m, m.Check()
}

// Check refuses metadata that no HTTP header could carry back: values
// with control characters or invalid UTF-8, empty or odd user names,
// negative part sizes, and anything over MaxMeta.
func (m Meta) Check() error {
	if len(m.Encode()) > MaxMeta {
		return fault.E(fault.Invalid, "object metadata over %d bytes", MaxMeta)
	}
	for _, v := range []string{m.ETag, m.ContentEncoding, m.ContentDisposition, m.ContentLanguage, m.CacheControl, m.Expires} {
		if err := headerValue(v); err != nil {
			return err
		}
	}
	for k, v := range m.User {
		if !headerName(k) {
			return fault.E(fault.Invalid, "object metadata name %q: not a lower-case header name", k)
		}
		if err := headerValue(v); err != nil {
			return fmt.Errorf("object metadata %q: %w", k, err)
		}
	}
	if err := checkChecksum(m.Checksum); err != nil {
		return err
	}
	count := int64(0)
	for _, r := range m.Parts {
		if r[0] < 0 || r[1] < 1 || r[1] > MaxParts {
			return fault.E(fault.Invalid, "object metadata: %d parts of %d bytes", r[1], r[0])
		}
		count += r[1]
	}
	if count > MaxParts {
		return fault.E(fault.Invalid, "object metadata: %d parts, over %d", count, MaxParts)
	}
	return nil
}

// checkChecksum refuses a Meta.Checksum that is not an algorithm name
// (upper-case letters and digits), a colon and a base64 value, optionally
// with a part count: the form a header carries back.
func checkChecksum(c string) error {
	if c == "" {
		return nil
	}
	bad := fault.E(fault.Invalid, "object metadata: checksum %.40q: want ALGORITHM:BASE64[-PARTS]", c)
	alg, value, ok := strings.Cut(c, ":")
	if !ok || len(c) > maxChecksum || alg == "" || value == "" {
		return bad
	}
	for i := 0; i < len(alg); i++ {
		if !(alg[i] >= 'A' && alg[i] <= 'Z' || alg[i] >= '0' && alg[i] <= '9') {
			return bad
		}
	}
	value, parts, composite := strings.Cut(value, "-")
	if composite {
		n, err := strconv.Atoi(parts)
		if err != nil || n < 1 || n > MaxParts || strconv.Itoa(n) != parts {
			return bad
		}
	}
	if _, err := base64.StdEncoding.DecodeString(value); err != nil {
		return bad
	}
	return nil
}

// headerName reports whether k is a lower-case HTTP header name (RFC
// 9110's token), which a metadata name must be to be sent back.
func headerName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func headerValue(v string) error {
	if !utf8.ValidString(v) {
		return fault.E(fault.Invalid, "object metadata value is not UTF-8")
	}
	for _, r := range v {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fault.E(fault.Invalid, "object metadata value %q has a control character", v)
		}
	}
	return nil
}
