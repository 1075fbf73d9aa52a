package transfer

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
)

// Every decoder that reads bytes from a peer (or from a user's paste) has a
// fuzz target; each must refuse bad input without panicking and without
// allocating beyond its caps.

func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	WriteFrame(&b, frameRequest, appendRequest(nil, 1, 7, []byte(`{"a":1}`)))
	WriteFrame(&b, frameResponse, nil)
	f.Add(b.Bytes())
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 9, 1, 2})
	f.Add([]byte{3, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	const max = 1 << 12
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for range 64 {
			before := r.Len()
			typ, body, err := ReadFrame(r, max, buf)
			if err != nil {
				return
			}
			if len(body) > max {
				t.Fatalf("body of %d bytes over the cap", len(body))
			}
			// What was read re-encodes to exactly the bytes consumed.
			var out bytes.Buffer
			if err := WriteFrame(&out, typ, body); err != nil {
				t.Fatal(err)
			}
			consumed := data[len(data)-before : len(data)-r.Len()]
			if !bytes.Equal(out.Bytes(), consumed) {
				t.Fatalf("frame re-encodes differently")
			}
			buf = body[:0]
		}
	})
}

func FuzzParseInvite(f *testing.F) {
	f.Add(testInvite().String())
	f.Add(Invite{Expires: time.Unix(-5, 0)}.String())
	f.Add("loft1-")
	f.Add("loft1-AQ")
	f.Add("not a token")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInvite(s)
		if err != nil {
			return
		}
		// One invite, one token: a parsed token re-encodes to itself.
		if got := inv.String(); got != s {
			t.Fatalf("re-encoded to %q", got)
		}
		again, err := ParseInvite(inv.String())
		if err != nil || again.Node != inv.Node || again.Secret != inv.Secret || !again.Expires.Equal(inv.Expires) || len(again.Addrs) != len(inv.Addrs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	h, _ := json.Marshal(hello{Versions: []int{protocolVersion}, Node: store.PeerID{}.String(), Name: "n"})
	f.Add(appendRequest(nil, 0, opHello, h))
	f.Add(appendResponse(nil, 3, fault.NotFound, []byte("gone")))
	f.Add(appendResponse(nil, 0, fault.OK, []byte(`{"version":1,"node":"x","name":""}`)))
	f.Add([]byte{0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		if id, op, payload, err := parseRequest(body); err == nil {
			if !bytes.Equal(appendRequest(nil, id, op, payload), body) {
				t.Fatal("request re-encodes differently")
			}
			var hl hello
			DecodeBody(payload, &hl)
		}
		if id, code, payload, err := parseResponse(body); err == nil {
			if !bytes.Equal(appendResponse(nil, id, code, payload), body) {
				t.Fatal("response re-encodes differently")
			}
			var rep helloReply
			DecodeBody(payload, &rep)
		}
		if op, payload, err := parseStreamRequest(body); err == nil {
			var v json.RawMessage
			if DecodeBody(payload, &v) == nil && len(v) == 0 {
				t.Fatalf("op %d: empty value decoded", op)
			}
		}
	})
}

func FuzzPeerIDOf(f *testing.F) {
	// The seed certificate is the same in every run: a fixed key, serial
	// and validity.
	id := fixedIdentity(1)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: id.ID().String()},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, id.key.Public(), id.key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add(der[:len(der)/2])
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return
		}
		PeerIDOf(c)
		peerIDOfRaw([][]byte{data})
	})
}
