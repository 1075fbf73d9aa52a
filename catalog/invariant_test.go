package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// The model: what the catalog should hold, computed without it.

type modelVersion struct {
	num          int64
	deleted      bool
	size         int64
	sha          Digest
	mode         uint32
	mtime        time.Time
	ct           string
	restoredFrom int64
	chunks       []int // indexes into the chunk pool
}

type modelObject struct {
	head     int64
	versions []modelVersion // ascending num
}

func (o *modelObject) headVersion() modelVersion { return o.versions[len(o.versions)-1] }

type model struct {
	objs map[string]*modelObject
	keep int
}

// push appends v and prunes to the keep count, returning the pruned numbers.
func (m *model) push(o *modelObject, v modelVersion) []int64 {
	o.versions = append(o.versions, v)
	o.head = v.num
	var pruned []int64
	if extra := len(o.versions) - m.keep; extra > 0 {
		for _, p := range o.versions[:extra] {
			pruned = append(pruned, p.num)
		}
		o.versions = slices.Clone(o.versions[extra:])
	}
	return pruned
}

const (
	poolSize = 10
)

var modelNames = []string{"a", "b", "d/x", "d/y", "d/z/w"}

// invariantRun drives one randomized sequence against a catalog and the
// model, checking both agree after every operation.
type invariantRun struct {
	t     *testing.T
	ctx   context.Context
	c     *Catalog
	db    *sql.DB // raw read connection
	clk   *clock
	rng   *rand.Rand
	m     model
	nextC int // content counter: each new content gets a distinct digest
	pool  map[store.ID]int
	rows  map[store.ID]chunkRow // chunk rows after the last operation
	// verified holds the "name@num" of versions whose Chunks were read back.
	verified map[string]bool
}

func newInvariantRun(t *testing.T, seed uint64) *invariantRun {
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})
	r := &invariantRun{t: t, ctx: context.Background(), c: c, db: rawDB(t, path), clk: clk,
		rng: rand.New(rand.NewPCG(seed, seed*7+1)), m: model{objs: map[string]*modelObject{}, keep: 10},
		pool: map[store.ID]int{}, verified: map[string]bool{}}
	for i := range poolSize {
		r.pool[cid(i)] = i
	}
	return r
}

func (r *invariantRun) randomVersion(name string) (NewVersion, modelVersion) {
	rng := r.rng
	// Sometimes the head's exact content again, which must be Unchanged.
	if o := r.m.objs[name]; o != nil && !o.headVersion().deleted && rng.IntN(6) == 0 {
		h := o.headVersion()
		return NewVersion{Name: names.Must(name), Size: h.size, Mode: h.mode, MTime: h.mtime, ContentType: h.ct,
			SHA256: h.sha, Chunks: refs(h.chunks...)}, h
	}
	n := rng.IntN(6) // 0: an empty version
	chunks := make([]int, n)
	for i := range chunks {
		chunks[i] = rng.IntN(poolSize) // repeats within a version happen
	}
	r.nextC++
	mv := modelVersion{sha: digest(fmt.Sprint("content", r.nextC)), mode: []uint32{0o644, 0o755}[rng.IntN(2)],
		mtime: t0.Add(time.Duration(rng.IntN(3)) * time.Hour), ct: []string{"", "text/plain"}[rng.IntN(2)], chunks: chunks}
	for _, c := range chunks {
		mv.size += ref(c).Plain
	}
	return NewVersion{Name: names.Must(name), Size: mv.size, Mode: mv.mode, MTime: mv.mtime, ContentType: mv.ct,
		SHA256: mv.sha, Chunks: refs(chunks...)}, mv
}

func (r *invariantRun) step(i int, full bool) {
	t := r.t
	before := r.rows
	now := r.clk.Advance(time.Second)
	name := modelNames[r.rng.IntN(len(modelNames))]
	o := r.m.objs[name]
	var desc string

	switch k := r.rng.IntN(20); {
	case k < 10: // AddVersion
		v, mv := r.randomVersion(name)
		desc = fmt.Sprintf("add %s %v", name, mv.chunks)
		var a Added
		err := r.c.Tx(r.ctx, func(tx *Tx) error {
			var err error
			a, err = tx.AddVersion(r.ctx, v)
			return err
		})
		if err != nil {
			t.Fatalf("op %d %s: %v", i, desc, err)
		}
		if o != nil && !o.headVersion().deleted && sameContent(o.headVersion(), mv) {
			if !a.Unchanged || a.Version.Num != o.head || len(a.Revived)+len(a.Pruned) != 0 {
				t.Fatalf("op %d %s: want Unchanged at %d, got %+v", i, desc, o.head, a)
			}
			break
		}
		if o == nil {
			o = &modelObject{}
			r.m.objs[name] = o
		}
		mv.num = o.head + 1
		wantPruned := r.m.push(o, mv)
		if a.Unchanged || a.Version.Num != mv.num {
			t.Fatalf("op %d %s: got %+v, want version %d", i, desc, a, mv.num)
		}
		if got := slices.Sorted(slices.Values(a.Pruned)); !slices.Equal(got, wantPruned) {
			t.Fatalf("op %d %s: Pruned %v, want %v", i, desc, a.Pruned, wantPruned)
		}
		// Revived: every distinct chunk of the version that had no row or
		// no references before, each once.
		var wantRevived []store.ID
		for _, c := range mv.chunks {
			id := cid(c)
			if before[id].refs == 0 && !slices.Contains(wantRevived, id) {
				wantRevived = append(wantRevived, id)
			}
		}
		if !slices.Equal(sortedIDs(a.Revived), sortedIDs(wantRevived)) {
			t.Fatalf("op %d %s: Revived %v, want %v", i, desc, shorts(a.Revived), shorts(wantRevived))
		}

	case k < 13: // Delete
		desc = "delete " + name
		v, err := del(r.c, name)
		switch {
		case o == nil:
			mustErrIs(t, desc, err, ErrNotFound)
		case o.headVersion().deleted:
			mustErrIs(t, desc, err, ErrDeleted)
		default:
			if err != nil {
				t.Fatalf("op %d %s: %v", i, desc, err)
			}
			r.m.push(o, modelVersion{num: o.head + 1, deleted: true})
			if !v.Deleted || v.Num != o.head {
				t.Fatalf("op %d %s: tombstone %+v", i, desc, v)
			}
		}

	case k < 19: // Restore
		num := int64(0)
		if o != nil && r.rng.IntN(4) != 0 {
			num = r.rng.Int64N(o.head + 2) // may be pruned, the head, or beyond
		}
		desc = fmt.Sprintf("restore %s %d", name, num)
		v, added, err := restore(r.c, name, num)
		wantErr, src := r.modelRestore(o, num)
		if wantErr != nil {
			mustErrIs(t, fmt.Sprintf("op %d %s", i, desc), err, wantErr)
			break
		}
		if err != nil {
			t.Fatalf("op %d %s: %v", i, desc, err)
		}
		if src.num == o.head {
			if added || v.Num != o.head {
				t.Fatalf("op %d %s: restoring the head gave %d, added %v", i, desc, v.Num, added)
			}
			break
		}
		nv := src
		nv.num, nv.restoredFrom = o.head+1, src.num
		r.m.push(o, nv)
		if !added || v.Num != nv.num || v.RestoredFrom != src.num {
			t.Fatalf("op %d %s: got %+v added %v", i, desc, v, added)
		}

	default: // keep-versions
		keep := 1 + r.rng.IntN(4)
		desc = fmt.Sprint("keep-versions ", keep)
		setConfig(t, r.c, "keep-versions", fmt.Sprint(keep))
		r.m.keep = keep
	}

	r.rows = r.check(i, desc, name, full, before, now)
}

// modelRestore returns the error Restore(num) should give, or the version
// it restores.
func (r *invariantRun) modelRestore(o *modelObject, num int64) (error, modelVersion) {
	if o == nil {
		return ErrNotFound, modelVersion{}
	}
	if num == 0 {
		for _, v := range slices.Backward(o.versions) {
			if !v.deleted {
				return nil, v
			}
		}
		return ErrNotFound, modelVersion{}
	}
	for _, v := range o.versions {
		if v.num == num {
			if v.deleted {
				return ErrDeleted, modelVersion{}
			}
			return nil, v
		}
	}
	return ErrNotFound, modelVersion{}
}

func sameContent(a, b modelVersion) bool {
	return a.sha == b.sha && a.size == b.size && a.mode == b.mode && a.mtime.Equal(b.mtime) && a.ct == b.ct
}

func shorts(ids []store.ID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id.Short())
	}
	return out
}

// rawVersion is a version as read through the raw connection.
type rawVersion struct {
	name                          string
	num, size, mtime, restoredFrm int64
	deleted                       bool
	mode                          uint32
	ct                            string
	sha                           []byte
	chunks                        []store.ID
}

// rawState reads every version and its chunk list through the raw
// connection, keyed by name and then number.
func rawState(t testing.TB, db *sql.DB) map[string]map[int64]*rawVersion {
	t.Helper()
	out := make(map[string]map[int64]*rawVersion)
	byID := make(map[int64]*rawVersion)
	rows, err := db.Query(`SELECT v.id, o.name, v.num, v.deleted, v.size, v.mode, v.mtime, v.content_type, v.sha256,
		coalesce(v.restored_from, 0) FROM versions v JOIN objects o ON o.id = v.object_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		v := new(rawVersion)
		if err := rows.Scan(&id, &v.name, &v.num, &v.deleted, &v.size, &v.mode, &v.mtime, &v.ct, &v.sha, &v.restoredFrm); err != nil {
			t.Fatal(err)
		}
		if out[v.name] == nil {
			out[v.name] = make(map[int64]*rawVersion)
		}
		out[v.name][v.num] = v
		byID[id] = v
	}
	rows.Close()
	rows, err = db.Query(`SELECT vc.version_id, c.hash FROM version_chunks vc JOIN chunks c ON c.id = vc.chunk_id
		ORDER BY vc.version_id, vc.idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			t.Fatal(err)
		}
		v := byID[id]
		if v == nil {
			t.Fatalf("version_chunks row for missing version %d", id)
		}
		v.chunks = append(v.chunks, store.ID(h))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// check compares the catalog with the model and its own invariants. Under
// the race detector every SQLite statement is slow, so the complete state
// is read with two raw queries after each operation, and through the
// catalog's API (Versions, Head, Chunks) for the name the operation touched
// and, when full is set, for every name.
func (r *invariantRun) check(i int, desc, touched string, full bool, before map[store.ID]chunkRow, now time.Time) map[store.ID]chunkRow {
	t, ctx, c := r.t, r.ctx, r.c
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after op %d (%s): %s", i, desc, fmt.Sprintf(format, args...))
	}

	if d, err := c.RefDrift(ctx); err != nil || len(d) != 0 {
		fail("RefDrift = %v, %v", d, err)
	}

	// The whole state, raw, against the model.
	state := rawState(t, r.db)
	rawCounted := make(map[store.ID]int64)
	var wantStats Stats
	for name, vs := range state {
		if r.m.objs[name] == nil {
			fail("catalog has versions of %q, the model none", name)
		}
		for _, v := range vs {
			for _, id := range v.chunks {
				rawCounted[id]++
			}
		}
	}
	for name, o := range r.m.objs {
		vs := state[name]
		if len(vs) != len(o.versions) {
			fail("%s has %d versions, model %d", name, len(vs), len(o.versions))
		}
		for _, mv := range o.versions {
			v := vs[mv.num]
			switch {
			case v == nil:
				fail("%s version %d missing", name, mv.num)
			case v.deleted != mv.deleted || v.size != mv.size || v.mode != mv.mode || v.ct != mv.ct ||
				v.restoredFrm != mv.restoredFrom || v.mtime != nanos(mv.mtime) ||
				(!mv.deleted && Digest(v.sha) != mv.sha):
				fail("%s version %d = %+v, model %+v", name, mv.num, v, mv)
			case !slices.Equal(v.chunks, ids(mv.chunks...)):
				fail("%s version %d chunks %v, model %v", name, mv.num, shorts(v.chunks), mv.chunks)
			}
			wantStats.LogicalBytes += mv.size
			wantStats.Versions++
		}
		if h := o.headVersion(); h.deleted {
			wantStats.DeletedObjects++
		} else {
			wantStats.Objects++
			wantStats.LiveBytes += h.size
		}
	}

	// Through the API: Versions, newest first, and each version's Chunks.
	objNames := []string{touched}
	if full {
		objNames = modelNames
	}
	apiCounted := make(map[store.ID]int64)
	for _, name := range objNames {
		o := r.m.objs[name]
		vs, err := c.Versions(ctx, names.Must(name))
		if o == nil {
			if !errors.Is(err, ErrNotFound) {
				fail("Versions(%s) of a never-added name: %v, %v", name, nums(vs), err)
			}
			continue
		}
		if err != nil || len(vs) != len(o.versions) {
			fail("Versions(%s) = %v, %v; model has %d", name, nums(vs), err, len(o.versions))
		}
		for j, v := range vs {
			mv := o.versions[len(o.versions)-1-j]
			want := Version{Name: name, Num: mv.num, Deleted: mv.deleted, Size: mv.size, Mode: mv.mode,
				MTime: mv.mtime, ContentType: mv.ct, SHA256: mv.sha, Created: v.Created, Origin: testOrigin,
				RestoredFrom: mv.restoredFrom, Chunks: int64(len(mv.chunks))}
			if err := sameVersion(v, want); err != nil {
				fail("%s version %d: %v", name, mv.num, err)
			}
			key := fmt.Sprint(name, "@", mv.num)
			if !full && r.verified[key] {
				continue // versions never change; this one was read back already
			}
			got := chunkIDs(t, c, v)
			if !slices.Equal(got, ids(mv.chunks...)) {
				fail("Chunks(%s@%d) = %v, want pool %v", name, mv.num, shorts(got), mv.chunks)
			}
			r.verified[key] = true
			for _, id := range got {
				apiCounted[id]++
			}
		}
		if full {
			h := o.headVersion()
			if hv, err := c.Head(ctx, names.Must(name)); err != nil || hv.Num != o.head || hv.Deleted != h.deleted {
				fail("Head(%s) = %d deleted %v, %v; want %d deleted %v", name, hv.Num, hv.Deleted, err, o.head, h.deleted)
			}
		}
	}

	// Every chunk row against the counts, and the zero stamps.
	rows := rawChunks(t, r.db)
	seq := rawCount(t, r.db, `SELECT coalesce(max(seq), 0) FROM changes`)
	for id, n := range rawCounted {
		if _, ok := rows[id]; !ok {
			fail("chunk %s is referenced %d times but has no row", id.Short(), n)
		}
	}
	for id, row := range rows {
		p, ok := r.pool[id]
		if !ok {
			fail("unexpected chunk row %s", id.Short())
		}
		if row.refs != rawCounted[id] {
			fail("chunk %d refs %d, versions reference it %d times", p, row.refs, rawCounted[id])
		}
		if full && row.refs != apiCounted[id] {
			fail("chunk %d refs %d, Versions+Chunks reference it %d times", p, row.refs, apiCounted[id])
		}
		if row.plain != ref(p).Plain || row.stored != ref(p).Stored {
			fail("chunk %d sizes %d/%d", p, row.plain, row.stored)
		}
		if (row.refs == 0) != row.zeroAt.Valid || (row.refs == 0) != row.zeroSq.Valid {
			fail("chunk %d refs %d with zero_at %v zero_seq %v", p, row.refs, row.zeroAt, row.zeroSq)
		}
		if row.refs > 0 {
			wantStats.Chunks++
			wantStats.PlainBytes += row.plain
			wantStats.StoredBytes += row.stored
			continue
		}
		wantStats.Garbage.Chunks++
		wantStats.Garbage.Bytes += row.stored
		if old, ok := before[id]; ok && old.refs == 0 {
			// Still unreferenced: the stamps are those of when it became so.
			if old.zeroAt != row.zeroAt || old.zeroSq != row.zeroSq {
				fail("chunk %d stayed unreferenced but its stamps moved %v/%v -> %v/%v", p, old.zeroAt, old.zeroSq, row.zeroAt, row.zeroSq)
			}
		} else if row.zeroAt.Int64 != now.UnixNano() || row.zeroSq.Int64 != seq {
			// Became unreferenced in this operation.
			fail("chunk %d became unreferenced with zero_at %d zero_seq %d, want %d and %d", p,
				row.zeroAt.Int64, row.zeroSq.Int64, now.UnixNano(), seq)
		}
	}

	st, err := c.Stats(ctx, SweepRule{Before: now.Add(time.Hour)})
	if err != nil {
		fail("Stats: %v", err)
	}
	wantStats.Garbage.ReclaimChunks, wantStats.Garbage.ReclaimBytes = wantStats.Garbage.Chunks, wantStats.Garbage.Bytes
	st.Garbage.Oldest = time.Time{}
	if st != wantStats {
		fail("Stats = %+v\nwant    %+v", st, wantStats)
	}
	if full {
		g, err := c.Garbage(ctx, SweepRule{Before: now.Add(time.Hour)}, 1000)
		if err != nil || int64(len(g)) != wantStats.Garbage.Chunks {
			fail("Garbage lists %d chunks, %v; want %d", len(g), err, wantStats.Garbage.Chunks)
		}
		for j, x := range g {
			if rows[x.ID].refs != 0 || (j > 0 && x.ZeroAt.Before(g[j-1].ZeroAt)) {
				fail("Garbage entry %d: %+v (not unreferenced, or out of order)", j, x)
			}
		}
	}
	return rows
}

func TestCatalogInvariants(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			r := newInvariantRun(t, seed)
			const ops = 200
			for i := range ops {
				r.step(i, i%20 == 19 || i == ops-1)
			}
			if len(r.m.objs) == 0 {
				t.Fatal("the run added nothing")
			}
		})
	}
}

func TestRebuildRefs(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})
	db := rawDB(t, path)

	add(t, c, nv("x", "x", 1, 2, 1))
	add(t, c, nv("y", "y", 2, 3))
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("z", "z1", 4))
	add(t, c, nv("w", "w1", 6))
	oldZero := clk.Advance(time.Hour)
	add(t, c, nv("w", "w2", 7)) // chunk 6 unreferenced, stamped oldZero
	clk.Advance(time.Hour)
	add(t, c, nv("z", "z2", 5)) // chunk 4 unreferenced
	if d, _ := c.RefDrift(ctx); len(d) != 0 {
		t.Fatalf("drift before corrupting: %v", d)
	}
	oldRow6 := rawChunks(t, db)[cid(6)]
	if oldRow6.zeroAt.Int64 != oldZero.UnixNano() {
		t.Fatalf("chunk 6 zero_at %v", oldRow6.zeroAt)
	}

	corrupt := map[int]string{
		1: `UPDATE chunks SET refs = 7 WHERE hash = ?`,                                  // actual 2
		2: `UPDATE chunks SET refs = 0 WHERE hash = ?`,                                  // actual 2, stamps stay NULL
		4: `UPDATE chunks SET refs = 2, zero_at = NULL, zero_seq = NULL WHERE hash = ?`, // actual 0, stamps lost
		6: `UPDATE chunks SET refs = 5 WHERE hash = ?`,                                  // actual 0, stamps kept
	}
	for i, q := range corrupt {
		id := cid(i)
		if _, err := db.Exec(q, id[:]); err != nil {
			t.Fatalf("corrupt chunk %d: %v", i, err)
		}
	}
	drift, err := c.RefDrift(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantDrift := map[store.ID]Drift{
		cid(1): {cid(1), 7, 2}, cid(2): {cid(2), 0, 2}, cid(4): {cid(4), 2, 0}, cid(6): {cid(6), 5, 0},
	}
	gotDrift := make(map[store.ID]Drift)
	for _, d := range drift {
		gotDrift[d.ID] = d
	}
	if len(drift) != len(wantDrift) || !maps.Equal(gotDrift, wantDrift) {
		t.Fatalf("RefDrift = %v, want %v", drift, wantDrift)
	}

	now := clk.Advance(time.Hour)
	var changed int64
	err = c.Tx(ctx, func(tx *Tx) error {
		var err error
		changed, err = tx.RebuildRefs(ctx)
		return err
	})
	if err != nil || changed != 4 {
		t.Fatalf("RebuildRefs = %d, %v; want 4", changed, err)
	}
	if d, err := c.RefDrift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("RefDrift after RebuildRefs = %v, %v", d, err)
	}
	seq := lastChangeSeq(t, c)
	chs, _ := c.Changes(ctx, seq-1, 1)
	if len(chs) != 1 || chs[0].Op != "repair" {
		t.Fatalf("RebuildRefs logged %+v", chs)
	}
	rows := rawChunks(t, db)
	for i, want := range map[int]int64{1: 2, 2: 2, 3: 1, 4: 0, 5: 1, 6: 0, 7: 1} {
		r := rows[cid(i)]
		if r.refs != want || (want == 0) != r.zeroAt.Valid || (want == 0) != r.zeroSq.Valid {
			t.Fatalf("chunk %d after rebuild: %+v, want refs %d", i, r, want)
		}
	}
	if r := rows[cid(4)]; r.zeroAt.Int64 != now.UnixNano() || r.zeroSq.Int64 != seq {
		t.Fatalf("chunk 4 lost its stamps and got %+v, want zero_at now and the repair's seq %d", r, seq)
	}
	if r := rows[cid(6)]; r.zeroAt != oldRow6.zeroAt || r.zeroSq != oldRow6.zeroSq {
		t.Fatalf("chunk 6 kept stamps %v/%v, want %v/%v", r.zeroAt, r.zeroSq, oldRow6.zeroAt, oldRow6.zeroSq)
	}

	// Nothing left to repair.
	err = c.Tx(ctx, func(tx *Tx) error {
		var err error
		changed, err = tx.RebuildRefs(ctx)
		return err
	})
	if err != nil || changed != 0 {
		t.Fatalf("second RebuildRefs = %d, %v", changed, err)
	}
}
