package catalog

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
)

func TestChangeLog(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})

	type want struct {
		op, name, detail string
		version          int64
		at               time.Time
	}
	var wants []want
	expect := func(op, name string, version int64, detail string) {
		wants = append(wants, want{op, name, detail, version, clk.Now()})
	}
	step := func() { clk.Advance(time.Second) }

	step()
	add(t, c, nv("a", "1", 1))
	expect("put", "a", 1, "")
	step()
	add(t, c, nv("a", "2", 2))
	expect("put", "a", 2, "")
	step()
	add(t, c, nv("a", "2", 2)) // unchanged: no change
	step()
	if _, err := del(c, "a"); err != nil {
		t.Fatal(err)
	}
	expect("delete", "a", 3, "")
	step()
	if _, err := del(c, "a"); !errors.Is(err, ErrDeleted) { // fails: no change
		t.Fatal(err)
	}
	if _, err := del(c, "zz"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	step()
	if _, _, err := restore(c, "a", 1); err != nil {
		t.Fatal(err)
	}
	expect("restore", "a", 4, `{"from":1}`)
	step()
	if _, added, err := restore(c, "a", 4); err != nil || added { // the head: no change
		t.Fatal(added, err)
	}
	step()
	setConfig(t, c, "keep-versions", "5")
	expect("config", "", 0, "keep-versions=5")
	step()
	err := c.Tx(ctx, func(tx *Tx) error { _, err := tx.RebuildRefs(ctx); return err })
	if err != nil {
		t.Fatal(err)
	}
	expect("repair", "", 0, "rebuild reference counts")
	step()
	run := GCRun{Started: t0, Finished: t0.Add(time.Minute), Grace: time.Hour, DryRun: true, Chunks: 3, Bytes: 300, Orphans: 2, OrphanBytes: 20, Error: "e"}
	if err := c.RecordGC(ctx, run); err != nil {
		t.Fatal(err)
	}
	expect("gc", "", 0, `{"chunks":3,"bytes":300,"orphans":2}`)
	step()
	if s, err := c.BeginSession(ctx, "not a change"); err != nil {
		t.Fatal(err)
	} else if err := s.End(ctx); err != nil {
		t.Fatal(err)
	}

	all, err := c.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(wants) {
		t.Fatalf("%d changes, want %d: %+v", len(all), len(wants), all)
	}
	for i, ch := range all {
		w := wants[i]
		if ch.Op != w.op || ch.Name != w.name || ch.Version != w.version || ch.Detail != w.detail || !ch.At.Equal(w.at) {
			t.Errorf("change %d = %+v, want %+v", i, ch, w)
		}
		if ch.Origin != testOrigin || ch.OriginSeq != int64(i+1) {
			t.Errorf("change %d origin %q/%d, want %q/%d", i, ch.Origin, ch.OriginSeq, testOrigin, i+1)
		}
		if i > 0 && ch.Seq <= all[i-1].Seq {
			t.Errorf("seq %d after %d", ch.Seq, all[i-1].Seq)
		}
	}

	// Paging.
	for _, limit := range []int{1, 2, 3, 100} {
		var paged []Change
		after := int64(0)
		for {
			page, err := c.Changes(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("page of %d with limit %d", len(page), limit)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		if !slices.Equal(paged, all) {
			t.Fatalf("paging by %d gave %+v", limit, paged)
		}
	}
	if rest, _ := c.Changes(ctx, all[len(all)-1].Seq, 10); len(rest) != 0 {
		t.Fatalf("changes after the last: %+v", rest)
	}
	if mid, _ := c.Changes(ctx, all[2].Seq, 2); !slices.Equal(mid, all[3:5]) {
		t.Fatalf("Changes(after %d, 2) = %+v", all[2].Seq, mid)
	}

	runs, err := c.GCRuns(ctx, 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("GCRuns = %+v, %v", runs, err)
	}
	if g := runs[0]; !g.Started.Equal(run.Started) || !g.Finished.Equal(run.Finished) || g.Grace != run.Grace ||
		g.DryRun != run.DryRun || g.Chunks != run.Chunks || g.Bytes != run.Bytes || g.Orphans != run.Orphans ||
		g.OrphanBytes != run.OrphanBytes || g.Error != run.Error {
		t.Fatalf("GCRuns[0] = %+v, want %+v", g, run)
	}

	// A second node writing the same catalog numbers its own changes from 1;
	// seq stays one sequence.
	c2, err := Open(ctx, path, Options{Origin: "node-2", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	add(t, c2, nv("b", "1", 5))
	add(t, c, nv("b", "2", 6))
	add(t, c2, nv("b", "3", 7))
	last := all[len(all)-1]
	more, err := c.Changes(ctx, last.Seq, 10)
	if err != nil || len(more) != 3 {
		t.Fatalf("changes from two origins: %+v, %v", more, err)
	}
	wantOrigins := []struct {
		origin string
		seq    int64
	}{{"node-2", 1}, {testOrigin, last.OriginSeq + 1}, {"node-2", 2}}
	for i, ch := range more {
		if ch.Origin != wantOrigins[i].origin || ch.OriginSeq != wantOrigins[i].seq || ch.Seq <= last.Seq {
			t.Fatalf("change %+v, want origin %+v", ch, wantOrigins[i])
		}
		last = ch
	}
	if v, _ := c.Version(ctx, names.Must("b"), 1); v.Origin != "node-2" {
		t.Fatalf("version origin %q", v.Origin)
	}
}

func TestRecordGCRuns(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	for i := range 5 {
		if err := c.RecordGC(ctx, GCRun{Started: t0.Add(time.Duration(i) * time.Hour), Chunks: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := c.GCRuns(ctx, 3)
	if err != nil || len(runs) != 3 {
		t.Fatalf("GCRuns = %+v, %v", runs, err)
	}
	for i, r := range runs {
		if r.Chunks != int64(4-i) || !r.Started.Equal(t0.Add(time.Duration(4-i)*time.Hour)) {
			t.Fatalf("GCRuns[%d] = %+v, want newest first", i, r)
		}
	}
}

// TestOwnSeqInOneTx: the changes one transaction logs number this node's
// changes one after another, and a floor raised in the middle of the
// transaction is honoured by the next one.
func TestOwnSeqInOneTx(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	var seqs []int64
	logOne := func(tx *Tx, name string) {
		t.Helper()
		if _, err := tx.AddVersion(ctx, nv(name, name, 1)); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, tx.originSeq)
	}
	err := c.Tx(ctx, func(tx *Tx) error {
		logOne(tx, "a")
		logOne(tx, "b")
		if err := tx.raiseFloor(ctx, 100); err != nil {
			return err
		}
		logOne(tx, "c")
		logOne(tx, "d")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 2, 101, 102}; !slices.Equal(seqs, want) {
		t.Fatalf("origin_seq of the changes %v, want %v", seqs, want)
	}
}
