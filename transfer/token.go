package transfer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
)

// invitePrefix starts every invite token; the digit is the token format,
// also repeated as the first byte of the encoding.
const (
	invitePrefix    = "loft1-"
	inviteVersion   = 1
	maxInviteAddrs  = 8
	maxInviteAddr   = 64
	inviteFixedSize = 1 + 32 + 16 + 8 + 1
	maxInviteSize   = inviteFixedSize + maxInviteAddrs*(1+maxInviteAddr)
)

// ErrBadInvite reports a token that is not a well-formed invite.
var ErrBadInvite = fault.New(fault.Denied, "bad invite token")

// Invite is what one node hands another to pair them in one step: who to
// dial, where, and a one-time secret proving the joiner holds the token.
type Invite struct {
	Node    store.PeerID
	Addrs   []string
	Secret  [16]byte
	Expires time.Time
}

// String encodes the invite as "loft1-" and the unpadded base64url of:
// version byte, 32-byte node ID, 16-byte secret, int64 big-endian Unix
// expiry (seconds; finer precision is dropped), address count, and each
// address as a length byte and its bytes. An invite with more than 8
// addresses, or an empty or over 64-byte address, encodes to a token
// ParseInvite refuses.
func (t Invite) String() string {
	b := make([]byte, 0, inviteFixedSize+len(t.Addrs)*(1+maxInviteAddr))
	b = append(b, inviteVersion)
	b = append(b, t.Node[:]...)
	b = append(b, t.Secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Expires.Unix()))
	b = append(b, byte(len(t.Addrs)))
	for _, a := range t.Addrs {
		b = append(b, byte(len(a)))
		b = append(b, a...)
	}
	return invitePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseInvite decodes a token made by String. It is strict: canonical
// base64 only, every byte accounted for, at most 8 addresses of 1 to 64
// printable ASCII bytes each. Expiry is not checked here (the caller knows
// the clock it trusts). Errors wrap ErrBadInvite.
func ParseInvite(s string) (Invite, error) {
	enc, ok := strings.CutPrefix(s, invitePrefix)
	if !ok {
		return Invite{}, fmt.Errorf("%w: does not start with %q", ErrBadInvite, invitePrefix)
	}
	if len(enc) > base64.RawURLEncoding.EncodedLen(maxInviteSize) {
		return Invite{}, fmt.Errorf("%w: too long", ErrBadInvite)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	// The decoder skips newlines; re-encoding catches those and any other
	// non-canonical spelling, so one invite has exactly one token.
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != enc {
		return Invite{}, fmt.Errorf("%w: not canonical base64url", ErrBadInvite)
	}
	if len(b) < inviteFixedSize {
		return Invite{}, fmt.Errorf("%w: %d bytes is too short", ErrBadInvite, len(b))
	}
	if b[0] != inviteVersion {
		return Invite{}, fmt.Errorf("%w: format version %d", ErrBadInvite, b[0])
	}
	var t Invite
	p := 1
	p += copy(t.Node[:], b[p:p+32])
	p += copy(t.Secret[:], b[p:p+16])
	t.Expires = time.Unix(int64(binary.BigEndian.Uint64(b[p:])), 0)
	p += 8
	n := int(b[p])
	p++
	if n > maxInviteAddrs {
		return Invite{}, fmt.Errorf("%w: %d addresses", ErrBadInvite, n)
	}
	for range n {
		if p >= len(b) {
			return Invite{}, fmt.Errorf("%w: truncated address list", ErrBadInvite)
		}
		l := int(b[p])
		p++
		if l == 0 || l > maxInviteAddr || l > len(b)-p {
			return Invite{}, fmt.Errorf("%w: bad address length %d", ErrBadInvite, l)
		}
		a := string(b[p : p+l])
		p += l
		if strings.IndexFunc(a, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' }) >= 0 {
			return Invite{}, fmt.Errorf("%w: address %q", ErrBadInvite, a)
		}
		t.Addrs = append(t.Addrs, a)
	}
	if p != len(b) {
		return Invite{}, fmt.Errorf("%w: %d trailing bytes", ErrBadInvite, len(b)-p)
	}
	return t, nil
}

// JoinProof is HMAC-SHA256(secret, "loft-join" || joiner || server): the
// joiner shows it holds the invite's secret, bound to both IDs so the proof
// is useless on any other pairing.
func JoinProof(secret [16]byte, joiner, server store.PeerID) []byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte("loft-join"))
	m.Write(joiner[:])
	m.Write(server[:])
	return m.Sum(nil)
}
