package gc

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// clock is a settable time source for the catalog, the store and gc.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	ctx  context.Context
	clk  *clock
	cat  *catalog.Catalog
	st   *store.Mem
	path string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "catalog.db")
	cat, err := catalog.Create(context.Background(), path, nil, catalog.Options{Origin: "test", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	f := &fixture{ctx: context.Background(), clk: clk, cat: cat, st: store.NewMem(clk.Now), path: path}
	f.tx(t, func(tx *catalog.Tx) error { return tx.SetConfig(f.ctx, "keep-versions", "1") })
	return f
}

func (f *fixture) tx(t *testing.T, fn func(*catalog.Tx) error) {
	t.Helper()
	if err := f.cat.Tx(f.ctx, fn); err != nil {
		t.Fatal(err)
	}
}

// put stores chunks and a version of name referencing them.
func (f *fixture) put(t *testing.T, name string, chunks ...string) []store.ID {
	t.Helper()
	b := f.st.NewBatch()
	var refs []catalog.ChunkRef
	var ids []store.ID
	for _, c := range chunks {
		id := store.Sum([]byte(c))
		n, err := b.Add(f.ctx, id, []byte(c))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, catalog.ChunkRef{ID: id, Plain: int64(len(c)), Stored: n})
		ids = append(ids, id)
	}
	if err := b.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.tx(t, func(tx *catalog.Tx) error {
		_, err := tx.AddVersion(f.ctx, catalog.NewVersion{Name: names.Must(name), Size: 1, MTime: f.clk.Now(), Chunks: refs})
		return err
	})
	return ids
}

// del deletes name; with keep-versions 1 its chunks become garbage.
func (f *fixture) del(t *testing.T, name string) {
	t.Helper()
	f.tx(t, func(tx *catalog.Tx) error { _, err := tx.Delete(f.ctx, names.Must(name)); return err })
}

func (f *fixture) has(id store.ID) bool {
	_, err := f.st.Stat(f.ctx, id)
	return err == nil
}

func (f *fixture) gc(t *testing.T, grace time.Duration, dry bool) Result {
	t.Helper()
	r, err := Run(f.ctx, f.cat, f.st, Options{Grace: grace, DryRun: dry, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSweepWaitsForGrace(t *testing.T) {
	f := newFixture(t)
	ids := f.put(t, "a", "one", "two")
	keep := f.put(t, "b", "two", "three") // "two" stays referenced
	f.del(t, "a")
	f.clk.Add(30 * time.Minute)
	if r := f.gc(t, time.Hour, false); r.Chunks != 0 || !f.has(ids[0]) {
		t.Fatalf("removed within the grace period: %+v", r)
	}
	f.clk.Add(time.Hour)
	r := f.gc(t, time.Hour, false)
	if r.Chunks != 1 || f.has(ids[0]) || !f.has(keep[0]) || !f.has(keep[1]) {
		t.Fatalf("after the grace period: %+v", r)
	}
	if r.Pending.Chunks != 0 {
		t.Fatalf("garbage left: %+v", r.Pending)
	}
	runs, err := f.cat.GCRuns(f.ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].Chunks != 1 {
		t.Fatalf("gc history: %+v %v", runs, err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	ids := f.put(t, "a", "one", "two")
	f.del(t, "a")
	f.clk.Add(time.Second) // files older than the cutoff
	dry := f.gc(t, 0, true)
	if dry.Chunks != 2 || !f.has(ids[0]) || !f.has(ids[1]) {
		t.Fatalf("dry run: %+v", dry)
	}
	if runs, _ := f.cat.GCRuns(f.ctx, 10); len(runs) != 0 {
		t.Fatal("a dry run was recorded as a run")
	}
	real := f.gc(t, 0, false)
	if real.Chunks != dry.Chunks || real.Bytes != dry.Bytes || f.has(ids[0]) {
		t.Fatalf("run after dry run: %+v vs %+v", real, dry)
	}
}

// TestSweepSparesLiveSessions: garbage made after a live session began is
// kept until the session ends; older garbage is not held back by it.
func TestSweepSparesLiveSessions(t *testing.T) {
	f := newFixture(t)
	before := f.put(t, "old", "old")
	f.del(t, "old")
	// A change after the delete: the old garbage is then strictly older
	// than the session (garbage made at its start change is spared too).
	// And time passes, so its file is not one the session may have written.
	f.tx(t, func(tx *catalog.Tx) error { return tx.SetConfig(f.ctx, "gc-grace", "1h") })
	f.clk.Add(time.Hour)
	s, err := f.cat.BeginSession(f.ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	after := f.put(t, "new", "new")
	f.del(t, "new")
	r := f.gc(t, 0, false)
	if r.Sessions != 1 || f.has(before[0]) || !f.has(after[0]) {
		t.Fatalf("with a live session: %+v, old kept %v, new kept %v", r, f.has(before[0]), f.has(after[0]))
	}
	if err := s.End(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(time.Second)
	if r := f.gc(t, 0, false); r.Chunks != 1 || f.has(after[0]) {
		t.Fatalf("after the session ended: %+v", r)
	}
}

// TestOrphans: files no row names go after the grace period, except those a
// live session may have written (newer than its start, less a margin).
func TestOrphans(t *testing.T) {
	f := newFixture(t)
	stage := func(data string) store.ID {
		id := store.Sum([]byte(data))
		b := f.st.NewBatch()
		b.Add(f.ctx, id, []byte(data))
		b.Commit(f.ctx)
		return id
	}
	old := stage("orphan from a crash")
	f.clk.Add(time.Hour)
	s, err := f.cat.BeginSession(f.ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	fresh := stage("staged by the running session")
	f.clk.Add(time.Hour)
	r := f.gc(t, 30*time.Minute, false)
	if r.Orphans != 1 || f.has(old) || !f.has(fresh) {
		t.Fatalf("orphans with a live session: %+v", r)
	}
	s.End(f.ctx)
	if r := f.gc(t, 30*time.Minute, false); r.Orphans != 1 || f.has(fresh) {
		t.Fatalf("orphans after the session: %+v", r)
	}
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	ids := f.put(t, "a", "one", "two", "three")
	rep, err := Check(f.ctx, f.cat, f.st, CheckOptions{ReadData: true, Now: f.clk.Now})
	if err != nil || len(rep.Findings) != 0 || rep.Chunks != 3 || rep.Read != 3 {
		t.Fatalf("clean check: %+v %v", rep, err)
	}

	// A missing file, a corrupt file and a wrong reference count.
	f.st.Remove(f.ctx, ids[0])
	f.st.Corrupt(ids[1], []byte("other"))
	raw, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE chunks SET refs = refs + 4 WHERE hash = ?`, ids[2][:]); err != nil {
		t.Fatal(err)
	}
	rep, err = Check(f.ctx, f.cat, f.st, CheckOptions{ReadData: true, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]Finding{}
	for _, fd := range rep.Findings {
		kinds[fd.Kind] = fd
	}
	if len(rep.Findings) != 3 || rep.Unrepaired() != 3 ||
		kinds[KindMissing].Chunk != ids[0].String() || kinds[KindCorrupt].Chunk != ids[1].String() ||
		kinds[KindRefcount].Chunk != ids[2].String() || len(kinds[KindMissing].Users) != 1 || kinds[KindMissing].Users[0] != "a@v1" {
		t.Fatalf("findings: %+v", rep.Findings)
	}

	// Repair fixes the count; missing and corrupt data stay problems.
	rep, err = Check(f.ctx, f.cat, f.st, CheckOptions{Repair: true, Now: f.clk.Now})
	if err != nil || rep.Unrepaired() != 2 {
		t.Fatalf("repair: %+v %v", rep.Findings, err)
	}
	if d, _ := f.cat.RefDrift(f.ctx); len(d) != 0 {
		t.Fatalf("drift after repair: %+v", d)
	}
}

// TestSweepKeepsFreshFiles: a garbage chunk whose file was written again
// after a live session began (a put that did not see the row and wrote its
// own copy) loses its row but keeps its file, which the session may be
// about to reference; the orphan sweep takes it once it is old.
func TestSweepKeepsFreshFiles(t *testing.T) {
	f := newFixture(t)
	ids := f.put(t, "a", "content")
	f.del(t, "a")
	f.tx(t, func(tx *catalog.Tx) error { return tx.SetConfig(f.ctx, "gc-grace", "1h") }) // garbage older than the session
	f.clk.Add(time.Hour)
	s, err := f.cat.BeginSession(f.ctx, "writer that rewrites the chunk")
	if err != nil {
		t.Fatal(err)
	}
	b := f.st.NewBatch()
	b.Add(f.ctx, ids[0], []byte("content"))
	b.Commit(f.ctx) // the fresh copy, written now
	f.clk.Add(time.Second)
	r := f.gc(t, 0, false)
	if r.Chunks != 1 || !f.has(ids[0]) {
		t.Fatalf("sweep with a fresh copy: %+v, file kept %v", r, f.has(ids[0]))
	}
	s.End(f.ctx)
	f.clk.Add(time.Hour)
	if r := f.gc(t, 0, false); r.Orphans != 1 || f.has(ids[0]) {
		t.Fatalf("orphan sweep: %+v", r)
	}
}
