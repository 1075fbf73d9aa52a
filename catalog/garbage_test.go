package catalog

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

func garbageIDs(gs []Garbage) []store.ID {
	var out []store.ID
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func TestGarbageAfterDeleteAndPrune(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, _ := newCatalog(t, Options{Now: clk.Now})
	setConfig(t, c, "keep-versions", "2")
	far := t0.Add(1000 * time.Hour)

	add(t, c, nv("x", "1", 1, 2, 2))
	if _, err := del(c, "x"); err != nil {
		t.Fatal(err)
	}
	// The tombstone leaves version 1 and its references: no garbage yet.
	if gs, err := c.Garbage(ctx, SweepRule{Before: far}, 100); err != nil || len(gs) != 0 {
		t.Fatalf("garbage after a delete alone: %v, %v", garbageIDs(gs), err)
	}

	t1 := clk.Advance(time.Hour)
	add(t, c, nv("x", "3", 3)) // prunes version 1: chunks 1 and 2 at t1
	add(t, c, nv("y", "1", 4))
	add(t, c, nv("y", "2", 5))
	t2 := clk.Advance(time.Hour)
	add(t, c, nv("y", "3", 6)) // prunes y@1: chunk 4 at t2

	list := func(before time.Time, limit int) []Garbage {
		t.Helper()
		gs, err := c.Garbage(ctx, SweepRule{Before: before}, limit)
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	if gs := list(t1.Add(-time.Nanosecond), 100); len(gs) != 0 {
		t.Fatalf("garbage zeroed at t1 listed with Before just under t1: %v", garbageIDs(gs))
	}
	gs := list(t1, 100) // Before is inclusive: unreferenced for at least the grace period
	if !slices.Equal(sortedIDs(garbageIDs(gs)), sortedIDs(ids(1, 2))) {
		t.Fatalf("garbage up to t1: %v", shorts(garbageIDs(gs)))
	}
	for _, g := range gs {
		if !g.ZeroAt.Equal(t1) || g.Stored != ref(int(idIndex(g.ID))).Stored {
			t.Fatalf("garbage %+v, want zeroed at %v", g, t1)
		}
	}
	gs = list(far, 100)
	if len(gs) != 3 || gs[2].ID != cid(4) || !gs[2].ZeroAt.Equal(t2) {
		t.Fatalf("all garbage, oldest first: %v", gs)
	}
	if gs := list(far, 1); len(gs) != 1 || !gs[0].ZeroAt.Equal(t1) {
		t.Fatalf("limit 1: %v", gs)
	}

	tot, err := c.GarbageTotals(ctx, SweepRule{Before: t1.Add(time.Nanosecond)})
	if err != nil {
		t.Fatal(err)
	}
	want := GarbageTotals{Chunks: 3, Bytes: 501 + 502 + 504, Oldest: tot.Oldest, ReclaimChunks: 2, ReclaimBytes: 501 + 502}
	if tot != want || !tot.Oldest.Equal(t1) {
		t.Fatalf("GarbageTotals = %+v, want %+v oldest %v", tot, want, t1)
	}
	st, err := c.Stats(ctx, SweepRule{Before: far})
	if err != nil {
		t.Fatal(err)
	}
	if st.Garbage.ReclaimChunks != 3 || st.Chunks != 3 || st.StoredBytes != 503+505+506 || st.PlainBytes != 1003+1005+1006 {
		t.Fatalf("Stats = %+v", st)
	}
}

// idIndex recovers i from cid(i) for the small indexes tests use.
func idIndex(id store.ID) int {
	for i := range 2000 {
		if cid(i) == id {
			return i
		}
	}
	return -1
}

func TestDeleteGarbage(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})
	db := rawDB(t, path)
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("g", "1", 1, 2, 3))
	add(t, c, nv("g", "2", 4))
	clk.Advance(time.Hour)
	rule := SweepRule{Before: clk.Now()}

	gs, err := c.Garbage(ctx, rule, 100)
	if err != nil || len(gs) != 3 {
		t.Fatalf("Garbage = %v, %v", garbageIDs(gs), err)
	}
	// Chunk 2 is referenced again between listing and deleting.
	if a := add(t, c, nv("h", "1", 2)); !slices.Equal(a.Revived, ids(2)) {
		t.Fatalf("re-referencing garbage revived %v", shorts(a.Revived))
	}
	var removed []Garbage
	err = c.Tx(ctx, func(tx *Tx) error {
		var err error
		removed, err = tx.DeleteGarbage(ctx, gs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedIDs(garbageIDs(removed)); !slices.Equal(got, sortedIDs(ids(1, 3))) {
		t.Fatalf("DeleteGarbage removed %v, want chunks 1 and 3", shorts(got))
	}
	for i, want := range map[int]ChunkState{1: {}, 3: {}, 2: {Known: true, Held: true, Refs: 1, Stored: 502}, 4: {Known: true, Held: true, Refs: 1, Stored: 504}} {
		if st, err := c.Lookup(ctx, cid(i)); err != nil || st != want {
			t.Fatalf("Lookup(chunk %d) = %+v, %v; want %+v", i, st, err, want)
		}
	}
	if k, _ := c.Known(ctx, ids(1, 2, 3, 4)); len(k) != 2 || !k.Has(cid(2)) || !k.Has(cid(4)) {
		t.Fatalf("Known = %v", k)
	}
	// Deleting the same list again deletes nothing.
	err = c.Tx(ctx, func(tx *Tx) error {
		var err error
		removed, err = tx.DeleteGarbage(ctx, gs)
		return err
	})
	if err != nil || len(removed) != 0 {
		t.Fatalf("second DeleteGarbage removed %v, %v", garbageIDs(removed), err)
	}
	// A deleted chunk comes back as a new row, revived.
	if a := add(t, c, nv("h", "2", 1)); !slices.Equal(a.Revived, ids(1)) {
		t.Fatalf("re-adding a deleted chunk revived %v", shorts(a.Revived))
	}
	if d, err := c.RefDrift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("RefDrift = %v, %v", d, err)
	}

	// The sweep as gc runs it: list and delete in one transaction.
	clk.Advance(time.Hour)
	err = c.Tx(ctx, func(tx *Tx) error {
		gs, err := tx.Garbage(ctx, SweepRule{Before: clk.Now()}, 100)
		if err != nil {
			return err
		}
		removed, err = tx.DeleteGarbage(ctx, gs)
		return err
	})
	if err != nil || len(removed) != 1 || removed[0].ID != cid(2) {
		t.Fatalf("sweep removed %v, %v; want chunk 2 (dropped when h@1 was pruned)", shorts(garbageIDs(removed)), err)
	}
	if n := rawCount(t, db, `SELECT count(*) FROM chunks WHERE refs = 0`); n != 0 {
		t.Fatalf("%d unreferenced rows left", n)
	}
}

// TestChunkForeignKey: version_chunks' foreign key keeps a referenced
// chunk's row from being deleted, even by a raw DELETE (on a connection with
// foreign keys on, as all the catalog's are) or with its refs corrupted.
func TestChunkForeignKey(t *testing.T) {
	ctx := context.Background()
	c, path := newCatalog(t, Options{})
	db := rawDB(t, path)
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("f", "1", 1, 9))
	add(t, c, nv("f", "2", 2, 9)) // chunk 1 unreferenced; 2 and 9 referenced

	id2 := cid(2)
	if _, err := db.Exec(`DELETE FROM chunks WHERE hash = ?`, id2[:]); err == nil {
		t.Fatal("raw DELETE of a referenced chunk row succeeded")
	}
	if st, _ := c.Lookup(ctx, id2); !st.Known || st.Refs != 1 {
		t.Fatalf("referenced chunk after refused DELETE: %+v", st)
	}
	id1 := cid(1)
	if res, err := db.Exec(`DELETE FROM chunks WHERE hash = ?`, id1[:]); err != nil {
		t.Fatalf("raw DELETE of an unreferenced chunk row: %v", err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("raw DELETE removed %d rows", n)
	}

	// Even with refs wrongly 0 (and so listed as garbage), DeleteGarbage
	// cannot remove a referenced row: the transaction fails instead.
	id9 := cid(9)
	if _, err := db.Exec(`UPDATE chunks SET refs = 0, zero_at = 1, zero_seq = 1 WHERE hash = ?`, id9[:]); err != nil {
		t.Fatal(err)
	}
	err := c.Tx(ctx, func(tx *Tx) error {
		gs, err := tx.Garbage(ctx, SweepRule{Before: t0.Add(time.Hour)}, 100)
		if err != nil {
			return err
		}
		if len(gs) != 1 || gs[0].ID != id9 {
			t.Errorf("garbage with corrupted refs: %v", shorts(garbageIDs(gs)))
		}
		_, err = tx.DeleteGarbage(ctx, gs)
		return err
	})
	if err == nil {
		t.Fatal("DeleteGarbage of a referenced row succeeded")
	}
	if k, _ := c.Known(ctx, ids(9)); !k.Has(id9) {
		t.Fatal("referenced chunk row deleted")
	}
	if v, _ := c.Head(ctx, names.Must("f")); !slices.Equal(chunkIDs(t, c, v), ids(2, 9)) {
		t.Fatal("version lost its chunks")
	}
}
