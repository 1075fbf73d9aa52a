package s3

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/loftstore/loft/catalog"
)

// NewKey makes an access key with a random ID (20 characters, as AWS's)
// and secret (40), granted grants.
func NewKey(name string, grants []catalog.Grant, now time.Time) catalog.AccessKey {
	return catalog.AccessKey{ID: "LK" + random(18, idChars), Secret: random(40, secretChars), Name: name,
		Grants: grants, Created: now}
}

const (
	idChars     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// random returns n characters drawn uniformly from chars (at most 256).
func random(n int, chars string) string {
	var sb strings.Builder
	b := make([]byte, 1)
	limit := 256 - 256%len(chars) // rejection keeps the draw uniform
	for sb.Len() < n {
		rand.Read(b)
		if int(b[0]) < limit {
			sb.WriteByte(chars[int(b[0])%len(chars)])
		}
	}
	return sb.String()
}

// ParseGrant reads a grant as the command line gives it: BUCKET:ACCESS,
// with "*" for every bucket.
func ParseGrant(s string) (catalog.Grant, error) {
	b, a, ok := strings.Cut(s, ":")
	g := catalog.Grant{Bucket: b, Access: catalog.Access(a)}
	if !ok || (b != "*" && checkBucket(b) != nil) || !g.Access.Allows(catalog.AccessRead) {
		return g, fmt.Errorf("grant %q: want BUCKET:read, BUCKET:write or BUCKET:admin (BUCKET may be *)", s)
	}
	return g, nil
}
