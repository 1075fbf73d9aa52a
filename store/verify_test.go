package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestVerifyAccepts(t *testing.T) {
	for _, data := range [][]byte{nil, {}, []byte("x"), randomBytes(3, 100000)} {
		if err := Verify(Sum(data), data); err != nil {
			t.Fatalf("Verify of matching %d bytes: %v", len(data), err)
		}
	}
}

func TestVerifyRejectsFlippedBit(t *testing.T) {
	data := randomBytes(4, 4096)
	id := Sum(data)
	for _, pos := range []int{0, 1, 2047, 4095} {
		for bit := 0; bit < 8; bit += 7 {
			bad := append([]byte(nil), data...)
			bad[pos] ^= 1 << bit
			err := Verify(id, bad)
			if err == nil {
				t.Fatalf("Verify accepted data with bit %d of byte %d flipped", bit, pos)
			}
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("error %v is not ErrIntegrity", err)
			}
			var ie *IntegrityError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not an *IntegrityError", err)
			}
			if ie.ID != id {
				t.Fatalf("IntegrityError.ID = %s, want %s", ie.ID, id)
			}
			if !strings.Contains(err.Error(), id.String()) {
				t.Fatalf("message %q does not name chunk %s", err, id)
			}
			if ie.Reason == "" {
				t.Fatal("IntegrityError has no reason")
			}
		}
	}
}

func TestVerifyRejectsOtherLengths(t *testing.T) {
	data := []byte("some chunk")
	id := Sum(data)
	for _, bad := range [][]byte{nil, data[:len(data)-1], append(append([]byte(nil), data...), 0)} {
		if err := Verify(id, bad); !errors.Is(err, ErrIntegrity) {
			t.Fatalf("Verify(%q): %v, want ErrIntegrity", bad, err)
		}
	}
	// The zero ID names no chunk, not even the empty one.
	if err := Verify(ID{}, nil); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("Verify(zero ID, nil): %v, want ErrIntegrity", err)
	}
}

func TestIntegrityErrorMessage(t *testing.T) {
	id := Sum([]byte("chunk"))
	e := &IntegrityError{ID: id, Reason: "bad things"}
	msg := e.Error()
	if !strings.Contains(msg, id.String()) || !strings.Contains(msg, "bad things") {
		t.Fatalf("message %q lacks the ID or the reason", msg)
	}
	if strings.Contains(msg, "object") {
		t.Fatalf("message %q mentions an object though none is set", msg)
	}

	e.Object = "backups/2024-01-01.tar"
	msg = e.Error()
	for _, want := range []string{id.String(), "bad things", "backups/2024-01-01.tar"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q lacks %q", msg, want)
		}
	}
}

func TestIntegrityErrorWrapped(t *testing.T) {
	id := Sum([]byte("w"))
	err := fmt.Errorf("restore: %w", &IntegrityError{ID: id, Object: "o", Reason: "r"})
	if !errors.Is(err, ErrIntegrity) {
		t.Fatal("wrapped IntegrityError is not ErrIntegrity")
	}
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.ID != id || ie.Object != "o" {
		t.Fatalf("errors.As on wrapped error: %+v", ie)
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrFormat) {
		t.Fatal("IntegrityError matches unrelated sentinels")
	}
}
