package catalog

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
)

func dropVersion(c *Catalog, name string, num int64) (Version, error) {
	var v Version
	err := c.Tx(context.Background(), func(tx *Tx) error {
		var err error
		v, err = tx.DropVersion(context.Background(), names.Must(name), num)
		return err
	})
	return v, err
}

// TestDropVersion: one version goes for good, as S3 deletes one; when it
// was the newest, the name shows what it showed before it was written;
// the drop reaches a peer; references stay exact.
func TestDropVersion(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	hour := time.Hour
	a.put(t, t0, "o", "v1", 1)
	a.put(t, t0.Add(hour), "o", "v2", 2)
	a.put(t, t0.Add(2*hour), "o", "v3", 3)
	syncOnce(t, a.c, b.c)
	head := func(c *Catalog, name string) Version {
		t.Helper()
		v, err := c.Head(ctx, names.Must(name))
		if err != nil {
			t.Fatalf("head of %s: %v", name, err)
		}
		return v
	}

	// An older version: gone here and, once synced, on the peer.
	if v, err := dropVersion(a.c, "o", 2); err != nil || v.Num != 2 {
		t.Fatalf("drop version 2: %v, %+v", err, v)
	}
	if got := fmt.Sprint(versionNums(t, a.c, "o")); got != "[3 1]" {
		t.Errorf("versions after dropping 2: %s", got)
	}
	// The newest: version 1 comes back as the newest, 3 goes.
	if _, err := dropVersion(a.c, "o", 3); err != nil {
		t.Fatal(err)
	}
	if h := head(a.c, "o"); h.Num != 4 || h.SHA256 != digest("v1") || h.Deleted {
		t.Errorf("after dropping the newest, head %d %x deleted %v, want 4 with v1's content", h.Num, h.SHA256[:4], h.Deleted)
	}
	syncOnce(t, a.c, b.c)
	if got, want := fmt.Sprint(versionNums(t, b.c, "o")), fmt.Sprint(versionNums(t, a.c, "o")); got != want {
		t.Errorf("the peer keeps versions %s, want %s as here", got, want)
	}
	if h := head(b.c, "o"); h.SHA256 != digest("v1") {
		t.Errorf("the peer's head has %x, want v1's content", h.SHA256[:4])
	}

	// A delete marker dropped: an undelete.
	if _, err := del(a.c, "o"); err != nil {
		t.Fatal(err)
	}
	marker := head(a.c, "o")
	if _, err := dropVersion(a.c, "o", marker.Num); err != nil {
		t.Fatal(err)
	}
	if h := head(a.c, "o"); h.Deleted || h.SHA256 != digest("v1") {
		t.Errorf("after dropping the delete marker: deleted %v", h.Deleted)
	}

	// Deleted before and after: it stays deleted.
	a.put(t, t0.Add(3*hour), "d", "d1", 4)
	mustDel := func() {
		if _, err := del(a.c, "d"); err != nil {
			t.Fatal(err)
		}
	}
	mustDel()                              // 2
	a.put(t, t0.Add(4*hour), "d", "d3", 5) // 3
	mustDel()                              // 4
	if _, err := dropVersion(a.c, "d", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := dropVersion(a.c, "d", 4); err != nil {
		t.Fatal(err)
	}
	if h := head(a.c, "d"); !h.Deleted {
		t.Error("dropping one of two delete markers in a row undeleted the object")
	}

	// The only version: the object goes.
	a.put(t, t0.Add(5*hour), "single", "s1", 6)
	if _, err := dropVersion(a.c, "single", 1); err != nil {
		t.Fatal(err)
	}
	if got := versionNums(t, a.c, "single"); got != nil {
		t.Errorf("single keeps versions %v", got)
	}

	// No such version; a version a snapshot sees.
	if _, err := dropVersion(a.c, "o", 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("dropping a version that never was: %v", err)
	}
	a.put(t, t0.Add(6*hour), "t/f", "f1", 7)
	mirror(t, a.c, "t", "t/f")
	a.put(t, t0.Add(7*hour), "t/f", "f2", 8)
	if _, err := dropVersion(a.c, "t/f", 1); !errors.Is(err, ErrKept) {
		t.Errorf("dropping a version a snapshot sees: %v, want ErrKept", err)
	}

	// With keep-versions 1, superseding the newest prunes it at once; the
	// drop still completes. A snapshot keeps the version before it.
	setConfig(t, a.c, "keep-versions", "1")
	a.put(t, t0.Add(8*hour), "k/f", "k1", 9)
	mirror(t, a.c, "k", "k/f")
	a.put(t, t0.Add(9*hour), "k/f", "k2", 10)
	if _, err := dropVersion(a.c, "k/f", 2); err != nil {
		t.Fatalf("dropping the newest under keep-versions 1: %v", err)
	}
	if h := head(a.c, "k/f"); h.SHA256 != digest("k1") {
		t.Errorf("k/f shows %x, want k1's content", h.SHA256[:4])
	}

	for _, c := range []*Catalog{a.c, b.c} {
		drift, err := c.RefDrift(ctx)
		if err != nil || len(drift) > 0 {
			t.Errorf("reference drift: %v %+v", err, drift)
		}
	}
}
