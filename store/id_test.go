package store

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// isHexID reports whether s is 64 hex digits of either case: exactly the
// strings hex.Decode, and so ParseID, accepts.
func isHexID(s string) bool {
	if len(s) != 2*IDSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func TestIDStringParseRoundTrip(t *testing.T) {
	for _, data := range []string{"", "a", "hello, world", strings.Repeat("x", 10000)} {
		id := Sum([]byte(data))
		s := id.String()
		if len(s) != 2*IDSize {
			t.Fatalf("String() has %d characters, want %d", len(s), 2*IDSize)
		}
		if s != strings.ToLower(s) {
			t.Fatalf("String() = %q is not lowercase", s)
		}
		got, err := ParseID(s)
		if err != nil {
			t.Fatalf("ParseID(%q): %v", s, err)
		}
		if got != id {
			t.Fatalf("ParseID(String()) = %s, want %s", got, id)
		}
		if !strings.HasPrefix(s, id.Short()) || len(id.Short()) != 12 {
			t.Fatalf("Short() = %q is not the 12-character prefix of %q", id.Short(), s)
		}
	}
}

func TestIDKnownValue(t *testing.T) {
	// SHA-256 of the empty string: IDs are plain SHA-256 of the chunk bytes.
	const want = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := Sum(nil).String(); got != want {
		t.Fatalf("Sum(nil) = %s, want %s", got, want)
	}
}

func TestParseIDUppercase(t *testing.T) {
	// hex.Decode accepts uppercase digits, so ParseID does too; String is
	// always lowercase, so the text form is not unique but the ID is.
	id := Sum([]byte("upper"))
	up := strings.ToUpper(id.String())
	got, err := ParseID(up)
	if err != nil {
		t.Fatalf("ParseID(%q): %v", up, err)
	}
	if got != id {
		t.Fatalf("ParseID(upper) = %s, want %s", got, id)
	}
	if got.String() != id.String() {
		t.Fatalf("String() after parsing uppercase = %q, want lowercase %q", got.String(), id.String())
	}
}

func TestParseIDRejects(t *testing.T) {
	valid := Sum([]byte("x")).String()
	for name, s := range map[string]string{
		"empty":          "",
		"short":          valid[:63],
		"long":           valid + "0",
		"half":           valid[:32],
		"double":         valid + valid,
		"non-hex g":      "g" + valid[1:],
		"non-hex space":  valid[:10] + " " + valid[11:],
		"prefix 0x":      "0x" + valid[:62],
		"non-ascii":      valid[:62] + "é", // 2 bytes, so the length is right
		"nul":            valid[:63] + "\x00",
		"minus":          "-" + valid[1:],
		"trailing space": valid[:63] + " ",
	} {
		t.Run(name, func(t *testing.T) {
			id, err := ParseID(s)
			if err == nil {
				t.Fatalf("ParseID(%q) = %s, want an error", s, id)
			}
			if !errors.Is(err, ErrBadID) {
				t.Fatalf("ParseID(%q) error %v is not ErrBadID", s, err)
			}
		})
	}
}

func TestIDIsZero(t *testing.T) {
	var z ID
	if !z.IsZero() {
		t.Fatal("zero ID: IsZero() = false")
	}
	if Sum(nil).IsZero() {
		t.Fatal("Sum(nil).IsZero() = true")
	}
	var one ID
	one[IDSize-1] = 1
	if one.IsZero() {
		t.Fatal("ID with last byte set: IsZero() = true")
	}
}

func TestIDJSON(t *testing.T) {
	type doc struct {
		ID   ID         `json:"id"`
		List []ID       `json:"list"`
		Map  map[ID]int `json:"map"`
	}
	a, b := Sum([]byte("a")), Sum([]byte("b"))
	in := doc{ID: a, List: []ID{a, b}, Map: map[ID]int{a: 1, b: 2}}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"id":"`+a.String()+`"`) {
		t.Fatalf("JSON %s does not hold the ID as a hex string", raw)
	}
	if !strings.Contains(string(raw), `"`+b.String()+`":2`) {
		t.Fatalf("JSON %s does not use the hex form as map key", raw)
	}
	var out doc
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || len(out.List) != 2 || out.List[0] != a || out.List[1] != b ||
		len(out.Map) != 2 || out.Map[a] != 1 || out.Map[b] != 2 {
		t.Fatalf("round trip through JSON: got %+v, want %+v", out, in)
	}

	var id ID
	err = json.Unmarshal([]byte(`"`+a.String()[:10]+`"`), &id)
	if !errors.Is(err, ErrBadID) {
		t.Fatalf("unmarshal short ID: error %v, want ErrBadID", err)
	}
	if !id.IsZero() {
		t.Fatalf("failed unmarshal changed the ID to %s", id)
	}
}

func TestIDTextRoundTrip(t *testing.T) {
	id := Sum([]byte("text"))
	txt, err := id.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if string(txt) != id.String() {
		t.Fatalf("MarshalText = %q, want %q", txt, id.String())
	}
	var got ID
	if err := got.UnmarshalText(txt); err != nil {
		t.Fatal(err)
	}
	if got != id {
		t.Fatalf("UnmarshalText(MarshalText) = %s, want %s", got, id)
	}
	before := got
	if err := got.UnmarshalText([]byte("nope")); !errors.Is(err, ErrBadID) {
		t.Fatalf("UnmarshalText(nope): %v, want ErrBadID", err)
	}
	if got != before {
		t.Fatal("failed UnmarshalText modified the ID")
	}
}

func TestIDSet(t *testing.T) {
	s := IDSet{}
	a, b, c := Sum([]byte("a")), Sum([]byte("b")), Sum([]byte("c"))
	if s.Has(a) {
		t.Fatal("empty set has a")
	}
	s.Add(a)
	s.Add(b)
	s.Add(a)
	if len(s) != 2 {
		t.Fatalf("len = %d after adding a, b, a; want 2", len(s))
	}
	if !s.Has(a) || !s.Has(b) || s.Has(c) {
		t.Fatalf("Has: a=%v b=%v c=%v, want true true false", s.Has(a), s.Has(b), s.Has(c))
	}
	s.Delete(a)
	s.Delete(c) // absent: no effect
	if s.Has(a) || !s.Has(b) || len(s) != 1 {
		t.Fatalf("after Delete(a): a=%v b=%v len=%d", s.Has(a), s.Has(b), len(s))
	}
	var nilSet IDSet
	if nilSet.Has(a) {
		t.Fatal("nil set has a")
	}
	nilSet.Delete(a) // must not panic
}

func FuzzParseID(f *testing.F) {
	id := Sum([]byte("seed"))
	f.Add(id.String())
	f.Add(strings.ToUpper(id.String()))
	f.Add(id.String()[:63] + "g")
	f.Add(id.String()[:63])
	f.Add("")
	f.Add(strings.Repeat("0", 64))
	f.Add(id.String()[:62] + "é")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrBadID) {
				t.Fatalf("ParseID(%q) error %v is not ErrBadID", s, err)
			}
			if isHexID(s) {
				t.Fatalf("ParseID(%q) rejected 64 hex digits: %v", s, err)
			}
			return
		}
		if !isHexID(s) {
			t.Fatalf("ParseID(%q) accepted text that is not 64 hex digits", s)
		}
		if got.String() != strings.ToLower(s) {
			t.Fatalf("ParseID(%q).String() = %q, want %q", s, got.String(), strings.ToLower(s))
		}
		again, err := ParseID(got.String())
		if err != nil || again != got {
			t.Fatalf("ParseID(String()) = %s, %v; want %s", again, err, got)
		}
	})
}

func peerIDOf(seed string) PeerID { return PeerID(sha256.Sum256([]byte(seed))) }

func TestPeerIDRoundTrip(t *testing.T) {
	for _, p := range []PeerID{{}, peerIDOf("a"), peerIDOf("b"), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		s := p.String()
		if len(s) != 52 || s != strings.ToLower(s) || strings.Contains(s, "=") {
			t.Fatalf("String() = %q, want 52 lowercase base32 characters without padding", s)
		}
		if !strings.HasPrefix(s, p.Short()) || len(p.Short()) != 8 {
			t.Fatalf("Short() = %q is not the 8-character prefix of %q", p.Short(), s)
		}
		for _, in := range []string{s, strings.ToUpper(s)} {
			got, err := ParsePeerID(in)
			if err != nil {
				t.Fatalf("ParsePeerID(%q): %v", in, err)
			}
			if got != p {
				t.Fatalf("ParsePeerID(%q) = %s, want %s", in, got, s)
			}
		}
	}
}

func TestParsePeerIDRejects(t *testing.T) {
	s := peerIDOf("x").String()
	for name, in := range map[string]string{
		"empty":     "",
		"short":     s[:51],
		"long":      s + "a",
		"padded":    s + "====",
		"digit 1":   "1" + s[1:],
		"digit 8":   s[:10] + "8" + s[11:],
		"space":     s[:51] + " ",
		"chunk id":  Sum([]byte("x")).String(),
		"40 bytes":  strings.Repeat("a", 64),
		"non-ascii": s[:50] + "é",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePeerID(in)
			if err == nil {
				t.Fatalf("ParsePeerID(%q) = %s, want an error", in, p)
			}
			if !errors.Is(err, ErrBadPeerID) {
				t.Fatalf("error %v is not ErrBadPeerID", err)
			}
		})
	}
}

func TestParsePeerIDCanonical(t *testing.T) {
	p := peerIDOf("canonical")
	s := p.String()
	for _, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		alt := s[:51] + string(c)
		if q, err := ParsePeerID(alt); err == nil && q == p && alt != s {
			t.Errorf("ParsePeerID(%q) = %s, a second spelling of %s", alt, q, s)
		}
	}
	if i := strings.IndexAny(s[:51], "si"); i >= 0 {
		alt := s[:i] + map[byte]string{'s': "ſ", 'i': "ı"}[s[i]] + s[i+1:]
		if q, err := ParsePeerID(alt); err == nil {
			t.Errorf("ParsePeerID(%q) = %s, accepting non-ASCII text", alt, q)
		}
	}
}

func FuzzParsePeerID(f *testing.F) {
	s := peerIDOf("seed").String()
	f.Add(s)
	f.Add(strings.ToUpper(s))
	f.Add(s[:51])
	f.Add(s + "=")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePeerID(in)
		if err != nil {
			if !errors.Is(err, ErrBadPeerID) {
				t.Fatalf("ParsePeerID(%q) error %v is not ErrBadPeerID", in, err)
			}
			return
		}
		out := p.String()
		if len(out) != 52 || out != strings.ToLower(out) {
			t.Fatalf("String() = %q", out)
		}
		again, err := ParsePeerID(out)
		if err != nil || again != p {
			t.Fatalf("ParsePeerID(String()) = %s, %v; want %s", again, err, out)
		}
	})
}
