package transfer

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/store"
)

func testInvite() Invite {
	var t Invite
	for i := range t.Node {
		t.Node[i] = byte(i)
	}
	for i := range t.Secret {
		t.Secret[i] = byte(200 + i)
	}
	t.Addrs = []string{"192.168.1.2:7420", "[fe80::1]:7420", "nas.local:7420"}
	t.Expires = time.Unix(1_900_000_000, 0)
	return t
}

func TestInviteRoundTrip(t *testing.T) {
	in := testInvite()
	s := in.String()
	if !strings.HasPrefix(s, "loft1-") {
		t.Fatal(s)
	}
	out, err := ParseInvite(s)
	if err != nil {
		t.Fatal(err)
	}
	if out.Node != in.Node || out.Secret != in.Secret || !out.Expires.Equal(in.Expires) || strings.Join(out.Addrs, ",") != strings.Join(in.Addrs, ",") {
		t.Fatalf("round trip: %+v", out)
	}
	empty := Invite{Expires: time.Unix(0, 0)}
	if got, err := ParseInvite(empty.String()); err != nil || len(got.Addrs) != 0 {
		t.Fatalf("no addresses: %v", err)
	}
}

func TestParseInviteRejects(t *testing.T) {
	good := testInvite().String()
	nine := testInvite()
	nine.Addrs = strings.Split("a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1", ",")
	long := testInvite()
	long.Addrs = []string{strings.Repeat("a", 65)}
	blank := testInvite()
	blank.Addrs = []string{""}
	spaced := testInvite()
	spaced.Addrs = []string{"a b:1"}
	cases := map[string]string{
		"empty":          "",
		"prefix":         "loft2-" + strings.TrimPrefix(good, "loft1-"),
		"newline":        good[:20] + "\n" + good[20:],
		"padding":        good + "=",
		"trailing":       good + "AA",
		"truncated":      good[:len(good)-4],
		"nine addresses": nine.String(),
		"long address":   long.String(),
		"empty address":  blank.String(),
		"space":          spaced.String(),
		"huge":           "loft1-" + strings.Repeat("A", 2000),
	}
	for name, s := range cases {
		if _, err := ParseInvite(s); !errors.Is(err, ErrBadInvite) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestJoinProof(t *testing.T) {
	var s1, s2 [16]byte
	s2[0] = 1
	a, b := store.PeerID{1}, store.PeerID{2}
	p := JoinProof(s1, a, b)
	if len(p) != 32 || !bytes.Equal(p, JoinProof(s1, a, b)) {
		t.Fatal("proof not deterministic")
	}
	for _, q := range [][]byte{JoinProof(s2, a, b), JoinProof(s1, b, a), JoinProof(s1, a, a)} {
		if bytes.Equal(p, q) {
			t.Fatal("proof does not bind secret and IDs")
		}
	}
}
