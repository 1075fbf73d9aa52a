package catalog

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"
)

// part builds the version a part of chunks is committed from: its ETag is
// derived from label, its size at least MinPart when big.
func part(label string, big bool, chunks ...int) NewVersion {
	v := nv("b/obj", label, chunks...)
	if big {
		v.Size = MinPart
	}
	sum := md5.Sum([]byte(label))
	v.Meta = Meta{ETag: hex.EncodeToString(sum[:])}
	return v
}

func addPart(t *testing.T, c *Catalog, id string, num int, v NewVersion) Added {
	t.Helper()
	var a Added
	err := c.Tx(context.Background(), func(tx *Tx) error {
		var err error
		a, err = tx.AddPart(context.Background(), id, num, v)
		return err
	})
	if err != nil {
		t.Fatalf("part %d: %v", num, err)
	}
	return a
}

func refsOf(t *testing.T, c *Catalog, i int) int64 {
	t.Helper()
	st, err := c.Lookup(context.Background(), cid(i))
	if err != nil {
		t.Fatal(err)
	}
	return st.Refs
}

func noDrift(t *testing.T, c *Catalog, when string) {
	t.Helper()
	d, err := c.RefDrift(context.Background())
	if err != nil || len(d) > 0 {
		t.Fatalf("%s: reference drift %+v, %v", when, d, err)
	}
}

// TestUploadLifecycle: parts hold references on their chunks (a replaced
// part lets go of its old ones), completion turns the listed parts into
// one version with S3's multipart ETag and gives back what the others
// held, and reference counts never drift from the rows.
func TestUploadLifecycle(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	if err := c.CreateUpload(ctx, Upload{ID: "u1", Name: "b/obj", ContentType: "text/x", Meta: Meta{User: map[string]string{"k": "v"}}}); err != nil {
		t.Fatal(err)
	}
	if a := addPart(t, c, "u1", 1, part("one", true, 1, 2)); len(a.Revived) != 2 {
		t.Fatalf("first part revived %d chunks, want 2", len(a.Revived))
	}
	addPart(t, c, "u1", 2, part("two-old", true, 3))
	addPart(t, c, "u1", 2, part("two", true, 4, 2)) // replaces: chunk 3 is let go
	addPart(t, c, "u1", 3, part("three", false, 5))
	addPart(t, c, "u1", 4, part("unused", false, 6))
	noDrift(t, c, "after the parts")
	if got := refsOf(t, c, 3); got != 0 {
		t.Fatalf("chunk of a replaced part has %d references", got)
	}
	if got := refsOf(t, c, 2); got != 2 {
		t.Fatalf("chunk in two parts has %d references, want 2", got)
	}
	ps, err := c.Parts(ctx, "u1", 1, 10)
	if err != nil || len(ps) != 3 || ps[0].Num != 2 {
		t.Fatalf("parts after 1: %+v, %v", ps, err)
	}

	complete := func(list []CompletePart) (Added, error) {
		var a Added
		err := c.Tx(ctx, func(tx *Tx) error {
			var err error
			a, err = tx.CompleteUpload(ctx, "u1", list, digest("whole"), "")
			return err
		})
		return a, err
	}
	etag := func(label string) string { s := md5.Sum([]byte(label)); return hex.EncodeToString(s[:]) }
	for _, tc := range []struct {
		list []CompletePart
		want error
	}{
		{[]CompletePart{{2, etag("two")}, {1, etag("one")}}, ErrBadPart},
		{[]CompletePart{{1, etag("one")}, {2, etag("two-old")}}, ErrBadPart},
		{[]CompletePart{{1, etag("one")}, {7, etag("one")}}, ErrBadPart},
		{[]CompletePart{{3, etag("three")}, {4, etag("unused")}}, ErrPartTooSmall},
		{[]CompletePart{{3, etag("three")}, {1, etag("one")}}, ErrBadPart}, // out of order, not too small
	} {
		if _, err := complete(tc.list); !errors.Is(err, tc.want) || errors.Is(err, ErrPartTooSmall) && tc.want != ErrPartTooSmall {
			t.Fatalf("complete %v: %v, want %v", tc.list, err, tc.want)
		}
	}
	a, err := complete([]CompletePart{{1, etag("one")}, {2, etag("two")}, {3, etag("three")}})
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	for _, l := range []string{"one", "two", "three"} {
		s := md5.Sum([]byte(l))
		h.Write(s[:])
	}
	v := a.Version
	if want := fmt.Sprintf("%x-3", h.Sum(nil)); v.Meta.ETag != want {
		t.Fatalf("ETag %s, want %s", v.Meta.ETag, want)
	}
	if v.Size != 2*MinPart+ref(5).Plain || v.Meta.PartCount() != 3 || v.Meta.User["k"] != "v" || v.ContentType != "text/x" || v.Chunks != 5 {
		t.Fatalf("completed version %+v", v)
	}
	noDrift(t, c, "after completion")
	for i, want := range map[int]int64{1: 1, 2: 2, 4: 1, 5: 1, 6: 0} {
		if got := refsOf(t, c, i); got != want {
			t.Errorf("chunk %d has %d references after completion, want %d", i, got, want)
		}
	}
	if _, err := c.Upload(ctx, "u1"); !errors.Is(err, ErrNoUpload) {
		t.Fatalf("upload after completion: %v", err)
	}
}

// TestUploadAbortAndExpiry: an aborted or expired upload lets go of every
// reference its parts held; one touched recently is kept.
func TestUploadAbortAndExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, _ := newCatalog(t, Options{Now: clk.Now})
	for _, id := range []string{"old", "new", "gone"} {
		if err := c.CreateUpload(ctx, Upload{ID: id, Name: "b/" + id}); err != nil {
			t.Fatal(err)
		}
	}
	addPart(t, c, "old", 1, part("a", false, 1))
	addPart(t, c, "gone", 1, part("b", false, 2))
	if err := c.Tx(ctx, func(tx *Tx) error { return tx.AbortUpload(ctx, "gone") }); err != nil {
		t.Fatal(err)
	}
	if refsOf(t, c, 2) != 0 {
		t.Fatal("an aborted upload's chunk kept its reference")
	}
	clk.Advance(time.Hour)
	addPart(t, c, "new", 1, part("c", false, 3))
	n, err := c.ExpireUploads(ctx, clk.Now().Add(-30*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("expired %d uploads, %v; want 1", n, err)
	}
	if refsOf(t, c, 1) != 0 || refsOf(t, c, 3) != 1 {
		t.Fatalf("after expiry: chunk 1 refs %d (want 0), chunk 3 refs %d (want 1)", refsOf(t, c, 1), refsOf(t, c, 3))
	}
	if _, err := c.Upload(ctx, "new"); err != nil {
		t.Fatalf("the recent upload: %v", err)
	}
	noDrift(t, c, "after expiry")
	err = c.Tx(ctx, func(tx *Tx) error { _, err := tx.AddPart(ctx, "gone", 2, part("d", false, 4)); return err })
	if !errors.Is(err, ErrNoUpload) {
		t.Fatalf("a part of an aborted upload: %v", err)
	}
}
