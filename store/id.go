// Package store is loft's data plane: chunk IDs, the content-defined chunker,
// the on-disk chunk format and the chunk stores. It imports nothing of loft's.
package store

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/loftstore/loft/fault"
)

// IDSize is the length of an ID in bytes.
const IDSize = sha256.Size

// ID names a chunk: the SHA-256 of its plain (uncompressed) bytes.
type ID [IDSize]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(sha256.Sum256(data)) }

// String returns the 64-character lowercase hex form used in paths and output.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex characters, enough to tell chunks apart in messages.
func (id ID) Short() string { return hex.EncodeToString(id[:6]) }

// IsZero reports whether id is the zero value, which names no chunk.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes id as hex, so IDs appear as strings in JSON.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the hex form.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ErrBadID is returned by ParseID for text that is not a chunk ID.
var ErrBadID = fault.New(fault.Invalid, "not a chunk id")

// ErrBadPeerID is returned by ParsePeerID for text that is not a node ID.
var ErrBadPeerID = fault.New(fault.Invalid, "not a node id")

// ParseID parses the 64-character hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return ID{}, fmt.Errorf("%w: %q has %d characters, want %d", ErrBadID, s, len(s), 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("%w: %q: %v", ErrBadID, s, err)
	}
	return id, nil
}

// IDSet is a set of chunk IDs.
type IDSet map[ID]struct{}

// Add inserts id.
func (s IDSet) Add(id ID) { s[id] = struct{}{} }

// Has reports whether id is in the set.
func (s IDSet) Has(id ID) bool { _, ok := s[id]; return ok }

// Delete removes id.
func (s IDSet) Delete(id ID) { delete(s, id) }

// PeerID names a node: the SHA-256 of its public key. Deriving it from the
// key, not the certificate, lets certificates be renewed.
type PeerID [32]byte

var peerEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// String returns the 52-character lowercase base32 form.
func (p PeerID) String() string { return strings.ToLower(peerEncoding.EncodeToString(p[:])) }

// Short returns the first 8 characters, for display.
func (p PeerID) Short() string { return p.String()[:8] }

// ParsePeerID parses the base32 form, in either case. Only the canonical
// spelling is accepted, so that one node has one textual ID.
func ParsePeerID(s string) (PeerID, error) {
	var p PeerID
	bad := fmt.Errorf("%w: %q", ErrBadPeerID, s)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return p, bad
		}
	}
	b, err := peerEncoding.DecodeString(strings.ToUpper(s))
	if err != nil || len(b) != len(p) {
		return p, bad
	}
	copy(p[:], b)
	if p.String() != strings.ToLower(s) {
		return PeerID{}, bad
	}
	return p, nil
}
