package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// sameVersion reports the first difference between two versions' public
// fields, comparing times as instants.
func sameVersion(got, want Version) error {
	switch {
	case got.Name != want.Name:
		return fmt.Errorf("Name %q, want %q", got.Name, want.Name)
	case got.Num != want.Num:
		return fmt.Errorf("Num %d, want %d", got.Num, want.Num)
	case got.Deleted != want.Deleted:
		return fmt.Errorf("Deleted %v, want %v", got.Deleted, want.Deleted)
	case got.Size != want.Size:
		return fmt.Errorf("Size %d, want %d", got.Size, want.Size)
	case got.Mode != want.Mode:
		return fmt.Errorf("Mode %o, want %o", got.Mode, want.Mode)
	case !got.MTime.Equal(want.MTime):
		return fmt.Errorf("MTime %v, want %v", got.MTime, want.MTime)
	case got.ContentType != want.ContentType:
		return fmt.Errorf("ContentType %q, want %q", got.ContentType, want.ContentType)
	case got.SHA256 != want.SHA256:
		return fmt.Errorf("SHA256 %s, want %s", got.SHA256, want.SHA256)
	case !got.Created.Equal(want.Created):
		return fmt.Errorf("Created %v, want %v", got.Created, want.Created)
	case got.Origin != want.Origin:
		return fmt.Errorf("Origin %q, want %q", got.Origin, want.Origin)
	case got.RestoredFrom != want.RestoredFrom:
		return fmt.Errorf("RestoredFrom %d, want %d", got.RestoredFrom, want.RestoredFrom)
	case got.Chunks != want.Chunks:
		return fmt.Errorf("Chunks %d, want %d", got.Chunks, want.Chunks)
	}
	return nil
}

func nums(vs []Version) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = v.Num
	}
	return out
}

func ids(is ...int) []store.ID {
	out := make([]store.ID, len(is))
	for i, n := range is {
		out[i] = cid(n)
	}
	return out
}

func sortedIDs(in []store.ID) []store.ID {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b store.ID) int { return slices.Compare(a[:], b[:]) })
	return out
}

func TestAddVersionNumbersAndReads(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, _ := newCatalog(t, Options{Now: clk.Now})

	var added []Version
	for i := range 3 {
		now := clk.Advance(time.Minute)
		v := nv("dir/file", fmt.Sprint("content", i), i, i+1)
		v.Mode = 0o600 + uint32(i)
		v.ContentType = "text/plain"
		v.MTime = t0.Add(time.Duration(i) * time.Hour)
		a := add(t, c, v)
		if a.Unchanged || len(a.Pruned) != 0 {
			t.Fatalf("add %d: %+v", i, a)
		}
		want := Version{Name: v.Name.String(), Num: int64(i + 1), Size: v.Size, Mode: v.Mode, MTime: v.MTime,
			ContentType: v.ContentType, SHA256: v.SHA256, Created: now, Origin: testOrigin, Chunks: 2}
		if err := sameVersion(a.Version, want); err != nil {
			t.Fatalf("add %d returned version: %v", i, err)
		}
		h, err := c.Head(ctx, names.Must("dir/file"))
		if err != nil {
			t.Fatal(err)
		}
		if err := sameVersion(h, want); err != nil {
			t.Fatalf("Head after add %d: %v", i, err)
		}
		added = append(added, a.Version)
	}
	for _, want := range added {
		got, err := c.Version(ctx, names.Must("dir/file"), want.Num)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameVersion(got, want); err != nil {
			t.Fatalf("Version(%d): %v", want.Num, err)
		}
		if ch := chunkIDs(t, c, got); !slices.Equal(ch, ids(int(want.Num-1), int(want.Num))) {
			t.Fatalf("Chunks of version %d = %v", want.Num, ch)
		}
	}
	vs, err := c.Versions(ctx, names.Must("dir/file"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nums(vs), []int64{3, 2, 1}) {
		t.Fatalf("Versions = %v, want newest first 3,2,1", nums(vs))
	}
	for i, v := range vs {
		if err := sameVersion(v, added[2-i]); err != nil {
			t.Fatalf("Versions[%d]: %v", i, err)
		}
	}

	// Another object numbers its versions from 1.
	if a := add(t, c, nv("dir/other", "x", 9)); a.Version.Num != 1 {
		t.Fatalf("first version of a second object is %d", a.Version.Num)
	}

	_, err = c.Version(ctx, names.Must("dir/file"), 4)
	mustErrIs(t, "Version(4)", err, ErrNotFound)
	_, err = c.Version(ctx, names.Must("missing"), 1)
	mustErrIs(t, "Version(missing)", err, ErrNotFound)
	_, err = c.Head(ctx, names.Must("missing"))
	mustErrIs(t, "Head(missing)", err, ErrNotFound)
	_, err = c.Versions(ctx, names.Must("missing"))
	mustErrIs(t, "Versions(missing)", err, ErrNotFound)
	_, err = c.Head(ctx, names.Must("dir"))
	mustErrIs(t, "Head(dir)", err, ErrNotFound)
}

// TestAddVersionBadName: a bad name cannot be a names.Name; the zero Name,
// the only other value, is refused without a trace.
func TestAddVersionBadName(t *testing.T) {
	c, path := newCatalog(t, Options{})
	err := c.Tx(context.Background(), func(tx *Tx) error {
		v := nv("x", "x", 1)
		v.Name = names.Name{}
		_, err := tx.AddVersion(context.Background(), v)
		return err
	})
	mustErrIs(t, "AddVersion of the zero Name", err, names.ErrBad)
	db := rawDB(t, path)
	if n := rawCount(t, db, `SELECT count(*) FROM objects`) + rawCount(t, db, `SELECT count(*) FROM chunks`); n != 0 {
		t.Fatalf("refused names left %d rows", n)
	}
}

func TestAddVersionUnchanged(t *testing.T) {
	ctx := context.Background()
	c, path := newCatalog(t, Options{})
	db := rawDB(t, path)

	base := nv("f", "same", 1, 2, 2)
	base.ContentType = "text/plain"
	first := add(t, c, base)
	rowsBefore := rawChunks(t, db)
	changesBefore := lastChangeSeq(t, c)

	a := add(t, c, base)
	if !a.Unchanged || a.Version.Num != 1 || len(a.Revived) != 0 || len(a.Pruned) != 0 {
		t.Fatalf("re-adding the same content: %+v", a)
	}
	if err := sameVersion(a.Version, first.Version); err != nil {
		t.Fatalf("Unchanged returned a different version: %v", err)
	}
	if vs, _ := c.Versions(ctx, names.Must("f")); len(vs) != 1 {
		t.Fatalf("%d versions after an unchanged add", len(vs))
	}
	if rowsAfter := rawChunks(t, db); !mapsEqual(rowsBefore, rowsAfter) {
		t.Fatalf("unchanged add changed chunk rows:\n%v\n%v", rowsBefore, rowsAfter)
	}
	if got := lastChangeSeq(t, c); got != changesBefore {
		t.Fatalf("unchanged add logged a change (%d -> %d)", changesBefore, got)
	}

	// Each attribute on its own makes a new version.
	variants := []func(*NewVersion){
		func(v *NewVersion) { v.Mode = 0o755 },
		func(v *NewVersion) { v.MTime = v.MTime.Add(time.Nanosecond) },
		func(v *NewVersion) { v.ContentType = "text/html" },
		func(v *NewVersion) { v.SHA256 = digest("other") },
		func(v *NewVersion) { v.Size++ },
	}
	prev := base
	for i, change := range variants {
		v := prev
		change(&v)
		a := add(t, c, v)
		if a.Unchanged || a.Version.Num != int64(i+2) {
			t.Fatalf("variant %d: %+v", i, a)
		}
		prev = v
	}

	// After a delete, the same content as before the delete is a new version.
	if _, err := del(c, "f"); err != nil {
		t.Fatal(err)
	}
	if a := add(t, c, prev); a.Unchanged {
		t.Fatal("adding content over a tombstone reported Unchanged")
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestAddVersionUnchangedEpochMTime: a file whose mtime is the Unix epoch
// (reproducible builds set it so) is stored as 0 nanoseconds, which reads
// back as the zero time.Time, so the Unchanged check never matches it and
// every backup adds a version (pruning real history), and its mtime reads
// back as year 1.
func TestAddVersionUnchangedEpochMTime(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	v := nv("epoch", "x", 1)
	v.MTime = time.Unix(0, 0)
	add(t, c, v)
	h, err := c.Head(ctx, names.Must("epoch"))
	if err != nil {
		t.Fatal(err)
	}
	if !h.MTime.Equal(v.MTime) {
		t.Errorf("MTime read back as %v, want %v", h.MTime, v.MTime)
	}
	if a := add(t, c, v); !a.Unchanged {
		t.Errorf("re-adding an epoch-mtime file added version %d", a.Version.Num)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})
	db := rawDB(t, path)
	add(t, c, nv("d/x", "one", 1, 2))
	add(t, c, nv("d/y", "two", 2))
	rowsBefore := rawChunks(t, db)

	now := clk.Advance(time.Hour)
	tomb, err := del(c, "d/x")
	if err != nil {
		t.Fatal(err)
	}
	want := Version{Name: "d/x", Num: 2, Deleted: true, Created: now, Origin: testOrigin}
	if err := sameVersion(tomb, want); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	h, err := c.Head(ctx, names.Must("d/x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sameVersion(h, want); err != nil {
		t.Fatalf("Head after delete: %v", err)
	}
	if ch := chunkIDs(t, c, h); len(ch) != 0 {
		t.Fatalf("tombstone has chunks %v", ch)
	}
	// The older version and its references stay.
	if vs, _ := c.Versions(ctx, names.Must("d/x")); !slices.Equal(nums(vs), []int64{2, 1}) {
		t.Fatalf("versions after delete %v", nums(vs))
	}
	if !mapsEqual(rowsBefore, rawChunks(t, db)) {
		t.Fatal("delete changed chunk rows though no version was pruned")
	}

	list := func(opts ListOptions) []string {
		var out []string
		if err := c.List(ctx, names.Must("d").AsPrefix(), opts, func(e Entry) error { out = append(out, e.Name); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(ListOptions{}); !slices.Equal(got, []string{"d/y"}) {
		t.Fatalf("List hides nothing: %v", got)
	}
	if got := list(ListOptions{Deleted: true}); !slices.Equal(got, []string{"d/x", "d/y"}) {
		t.Fatalf("List with Deleted: %v", got)
	}
	st, err := c.Stats(ctx, SweepRule{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Objects != 1 || st.DeletedObjects != 1 || st.Versions != 3 {
		t.Fatalf("Stats after delete: %+v", st)
	}

	_, err = del(c, "d/x")
	mustErrIs(t, "Delete of a deleted object", err, ErrDeleted)
	_, err = del(c, "d/missing")
	mustErrIs(t, "Delete of a missing object", err, ErrNotFound)
	_, err = del(c, "d")
	mustErrIs(t, "Delete of a directory", err, ErrNotFound)
	if vs, _ := c.Versions(ctx, names.Must("d/x")); len(vs) != 2 {
		t.Fatalf("failed delete added a version: %v", nums(vs))
	}
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})
	db := rawDB(t, path)

	v1 := nv("r", "v1", 1, 2, 2, 3)
	v1.Mode, v1.ContentType, v1.MTime = 0o700, "image/png", t0.Add(-time.Hour)
	src := add(t, c, v1).Version
	add(t, c, nv("r", "v2", 4))
	add(t, c, nv("r", "v3", 5, 6))
	srcChunks := chunkIDs(t, c, src)

	now := clk.Advance(time.Hour)
	v, added, err := restore(c, "r", 1)
	if err != nil || !added {
		t.Fatalf("Restore(1) = %v, %v", added, err)
	}
	want := src
	want.Num, want.RestoredFrom, want.Created = 4, 1, now
	if err := sameVersion(v, want); err != nil {
		t.Fatalf("restored version: %v", err)
	}
	if h, _ := c.Head(ctx, names.Must("r")); sameVersion(h, want) != nil {
		t.Fatalf("Head after restore: %+v", h)
	}
	if got := chunkIDs(t, c, v); !slices.Equal(got, srcChunks) {
		t.Fatalf("restored chunks %v, want %v", got, srcChunks)
	}
	rows := rawChunks(t, db)
	for i, n := range map[int]int64{1: 2, 2: 4, 3: 2, 4: 1, 5: 1} {
		if rows[cid(i)].refs != n {
			t.Fatalf("chunk %d refs %d after restore, want %d", i, rows[cid(i)].refs, n)
		}
	}
	seq := lastChangeSeq(t, c)

	// Restoring the head changes nothing.
	v, added, err = restore(c, "r", 4)
	if err != nil || added || v.Num != 4 {
		t.Fatalf("Restore(head) = %d, %v, %v", v.Num, added, err)
	}
	if !mapsEqual(rows, rawChunks(t, db)) || lastChangeSeq(t, c) != seq {
		t.Fatal("Restore of the head changed something")
	}
	// num 0 with a live head is the head too.
	if v, added, err = restore(c, "r", 0); err != nil || added || v.Num != 4 {
		t.Fatalf("Restore(0) of a live object = %d, %v, %v", v.Num, added, err)
	}

	if _, err := del(c, "r"); err != nil {
		t.Fatal(err)
	}
	_, _, err = restore(c, "r", 5)
	mustErrIs(t, "Restore(tombstone)", err, ErrDeleted)
	_, _, err = restore(c, "r", 99)
	mustErrIs(t, "Restore(99)", err, ErrNotFound)
	_, _, err = restore(c, "nope", 1)
	mustErrIs(t, "Restore(missing object)", err, ErrNotFound)

	// Undelete: the newest version that is not a tombstone is 4.
	v, added, err = restore(c, "r", 0)
	if err != nil || !added || v.Num != 6 || v.RestoredFrom != 4 || v.Deleted {
		t.Fatalf("Restore(0) after delete = %+v, %v, %v", v, added, err)
	}
	if got := chunkIDs(t, c, v); !slices.Equal(got, srcChunks) {
		t.Fatalf("undeleted chunks %v, want %v", got, srcChunks)
	}
	if d, err := c.RefDrift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("RefDrift = %v, %v", d, err)
	}
}

// TestRestoreLarge restores a version with more chunks than one insert
// statement (200) and one Chunks page (512) hold, and more chunk rows than
// one EachChunk page (1000).
func TestRestoreLarge(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	const n = 1234
	list := make([]int, n)
	for i := range list {
		list[i] = (i * 7) % 1100 // 1100 distinct chunks, some twice
	}
	src := add(t, c, nv("big", "big", list...)).Version
	add(t, c, nv("big", "small", 1))
	got := chunkIDs(t, c, src)
	if !slices.Equal(got, ids(list...)) {
		t.Fatalf("Chunks of a %d-chunk version differ from what was added", n)
	}
	v, added, err := restore(c, "big", 1)
	if err != nil || !added {
		t.Fatal(err)
	}
	if v.Chunks != n || !slices.Equal(chunkIDs(t, c, v), got) {
		t.Fatalf("restored large version has %d chunks or a different list", v.Chunks)
	}
	// Chunks from the middle.
	var tail []store.ID
	err = c.Chunks(ctx, v, 600, func(idx int64, r ChunkRef) error {
		if idx != int64(600+len(tail)) {
			return fmt.Errorf("index %d", idx)
		}
		if r.Plain != 1000+int64(list[idx]) || r.Stored != 500+int64(list[idx]) {
			return fmt.Errorf("sizes %d/%d at %d", r.Plain, r.Stored, idx)
		}
		tail = append(tail, r.ID)
		return nil
	})
	if err != nil || !slices.Equal(tail, got[600:]) {
		t.Fatalf("Chunks from 600: %d ids, %v", len(tail), err)
	}
	// fn's error stops the walk and is returned as is.
	stop := errors.New("stop")
	calls := 0
	if err := c.Chunks(ctx, v, 0, func(int64, ChunkRef) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Chunks with failing fn: %v after %d calls", err, calls)
	}

	seen := make(store.IDSet)
	err = c.EachChunk(ctx, func(r ChunkRow) error {
		if seen.Has(r.ID) {
			return fmt.Errorf("EachChunk gave %s twice", r.ID.Short())
		}
		seen.Add(r.ID)
		return nil
	})
	if err != nil || len(seen) != 1100 {
		t.Fatalf("EachChunk: %d rows, %v", len(seen), err)
	}
	known, err := c.Known(ctx, append(ids(list...), cid(-1), cid(-2)))
	if err != nil || len(known) != 1100 || known.Has(cid(-1)) {
		t.Fatalf("Known: %d, %v", len(known), err)
	}
	if d, err := c.RefDrift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("RefDrift = %v, %v", d, err)
	}
}

func TestKeepVersionsPruning(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})
	db := rawDB(t, path)
	if v, _ := c.Config(ctx, "keep-versions"); v != "10" {
		t.Fatalf("default keep-versions %q", v)
	}

	t.Run("from the start", func(t *testing.T) {
		setConfig(t, c, "keep-versions", "3")
		for i := 1; i <= 5; i++ {
			// Version i uses chunk 100+i alone, and chunk 100 shared by all.
			a := add(t, c, nv("p", fmt.Sprint(i), 100, 100+i))
			switch i {
			case 4, 5:
				if !slices.Equal(a.Pruned, []int64{int64(i - 3)}) {
					t.Fatalf("add %d pruned %v", i, a.Pruned)
				}
			default:
				if len(a.Pruned) != 0 {
					t.Fatalf("add %d pruned %v", i, a.Pruned)
				}
			}
		}
		vs, _ := c.Versions(ctx, names.Must("p"))
		if !slices.Equal(nums(vs), []int64{5, 4, 3}) {
			t.Fatalf("versions %v, want 5,4,3", nums(vs))
		}
		_, err := c.Version(ctx, names.Must("p"), 1)
		mustErrIs(t, "pruned version", err, ErrNotFound)
		rows := rawChunks(t, db)
		if rows[cid(100)].refs != 3 {
			t.Fatalf("shared chunk refs %d", rows[cid(100)].refs)
		}
		for _, i := range []int{101, 102} {
			if r := rows[cid(i)]; r.refs != 0 || !r.zeroAt.Valid || !r.zeroSq.Valid {
				t.Fatalf("chunk of pruned version: %+v", r)
			}
		}
	})

	t.Run("several at once", func(t *testing.T) {
		setConfig(t, c, "keep-versions", "10")
		for i := 1; i <= 4; i++ {
			add(t, c, nv("q", fmt.Sprint(i), 200+i))
		}
		setConfig(t, c, "keep-versions", "3")
		now := clk.Advance(time.Hour)
		a := add(t, c, nv("q", "5", 205))
		if got := slices.Sorted(slices.Values(a.Pruned)); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("Pruned %v, want 1 and 2", a.Pruned)
		}
		vs, _ := c.Versions(ctx, names.Must("q"))
		if !slices.Equal(nums(vs), []int64{5, 4, 3}) {
			t.Fatalf("versions %v, want 5,4,3", nums(vs))
		}
		// The chunks that lost their last reference are stamped with the
		// time and with the change that added version 5.
		seq := lastChangeSeq(t, c)
		rows := rawChunks(t, db)
		for _, i := range []int{201, 202} {
			r := rows[cid(i)]
			if r.refs != 0 || r.zeroAt.Int64 != now.UnixNano() || r.zeroSq.Int64 != seq {
				t.Fatalf("chunk %d after prune: %+v, want zero_at %d zero_seq %d", i, r, now.UnixNano(), seq)
			}
		}
		for _, i := range []int{203, 204, 205} {
			if r := rows[cid(i)]; r.refs != 1 || r.zeroAt.Valid || r.zeroSq.Valid {
				t.Fatalf("chunk %d of a kept version: %+v", i, r)
			}
		}
	})

	t.Run("tombstones count", func(t *testing.T) {
		setConfig(t, c, "keep-versions", "2")
		add(t, c, nv("t", "1", 301))
		add(t, c, nv("t", "2", 302))
		if _, err := del(c, "t"); err != nil {
			t.Fatal(err)
		}
		vs, _ := c.Versions(ctx, names.Must("t"))
		if !slices.Equal(nums(vs), []int64{3, 2}) {
			t.Fatalf("versions %v, want 3,2", nums(vs))
		}
		// Restoring 2 prunes 2 itself in the same transaction; its chunks
		// stay referenced by the copy.
		v, added, err := restore(c, "t", 2)
		if err != nil || !added || v.Num != 4 {
			t.Fatalf("Restore(2) = %+v, %v, %v", v, added, err)
		}
		vs, _ = c.Versions(ctx, names.Must("t"))
		if !slices.Equal(nums(vs), []int64{4, 3}) {
			t.Fatalf("versions %v, want 4,3", nums(vs))
		}
		if r := rawChunks(t, db)[cid(302)]; r.refs != 1 || r.zeroAt.Valid {
			t.Fatalf("chunk of the restored version: %+v", r)
		}
		if got := chunkIDs(t, c, v); !slices.Equal(got, ids(302)) {
			t.Fatalf("restored chunks %v", got)
		}
	})

	t.Run("keep 1 and undelete", func(t *testing.T) {
		setConfig(t, c, "keep-versions", "1")
		add(t, c, nv("u", "1", 401))
		if _, err := del(c, "u"); err != nil {
			t.Fatal(err)
		}
		vs, _ := c.Versions(ctx, names.Must("u"))
		if !slices.Equal(nums(vs), []int64{2}) || !vs[0].Deleted {
			t.Fatalf("versions %v", nums(vs))
		}
		_, _, err := restore(c, "u", 0)
		mustErrIs(t, "Restore(0) with only a tombstone", err, ErrNotFound)
		_, _, err = restore(c, "u", 1)
		mustErrIs(t, "Restore(pruned)", err, ErrNotFound)
	})

	if d, err := c.RefDrift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("RefDrift = %v, %v", d, err)
	}
}

// TestKeepVersionsChangedInSameTx: a transaction that adds a version, then
// lowers keep-versions, then adds another must prune by the new setting.
func TestKeepVersionsChangedInSameTx(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	var pruned []int64
	err := c.Tx(ctx, func(tx *Tx) error {
		for i := range 3 {
			if _, err := tx.AddVersion(ctx, nv("k", fmt.Sprint(i), i)); err != nil {
				return err
			}
		}
		if err := tx.SetConfig(ctx, "keep-versions", "1"); err != nil {
			return err
		}
		a, err := tx.AddVersion(ctx, nv("k", "last", 9))
		pruned = a.Pruned
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := c.Versions(ctx, names.Must("k"))
	if len(vs) != 1 || len(pruned) != 3 {
		t.Fatalf("after keep-versions=1 in the same transaction: versions %v, pruned %v", nums(vs), pruned)
	}
}

func TestRevived(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	setConfig(t, c, "keep-versions", "1")

	a := add(t, c, nv("a", "1", 1, 2, 1, 1, 3))
	if got := sortedIDs(a.Revived); !slices.Equal(got, sortedIDs(ids(1, 2, 3))) {
		t.Fatalf("new chunks revived %v (want each once)", a.Revived)
	}
	// Chunks 1 and 2 are referenced by a/1; chunk 4 is new.
	a = add(t, c, nv("b", "1", 2, 4, 1, 4))
	if got := sortedIDs(a.Revived); !slices.Equal(got, sortedIDs(ids(4))) {
		t.Fatalf("revived %v, want chunk 4 only", a.Revived)
	}
	// Replacing a/1 drops chunk 3 to zero (2 and 1 are held by b).
	add(t, c, nv("a", "2", 5))
	if st, _ := c.Lookup(ctx, cid(3)); !st.Known || st.Refs != 0 || st.ZeroSeq == 0 {
		t.Fatalf("chunk 3 after prune: %+v", st)
	}
	// Chunk 3 has a row with no references: it is revived, once, though
	// listed twice; chunk 5 is referenced by a/2 until that is pruned in this
	// very transaction, so it is not.
	a = add(t, c, nv("a", "3", 3, 5, 3))
	if got := sortedIDs(a.Revived); !slices.Equal(got, sortedIDs(ids(3))) {
		t.Fatalf("revived %v, want chunk 3 only", a.Revived)
	}
	if st, _ := c.Lookup(ctx, cid(3)); st.Refs != 2 || st.ZeroSeq != 0 {
		t.Fatalf("chunk 3 after revival: %+v", st)
	}
	if st, _ := c.Lookup(ctx, cid(99)); st.Known {
		t.Fatalf("unknown chunk: %+v", st)
	}
	// An empty version revives nothing and holds nothing.
	a = add(t, c, nv("empty", "e"))
	if len(a.Revived) != 0 || a.Version.Chunks != 0 || a.Version.Size != 0 {
		t.Fatalf("empty version: %+v", a)
	}
	if u, err := c.Users(ctx, cid(1), 10); err != nil || !slices.Equal(u, []string{"b@v1"}) {
		t.Fatalf("Users(chunk 1) = %v, %v", u, err)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	vals, keys, err := c.ConfigAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(keys, "gc-grace") || !slices.Contains(keys, "keep-versions") || !slices.IsSorted(keys) ||
		vals["gc-grace"] != "24h" || vals["keep-versions"] != "10" || vals["replicas"] != "2" {
		t.Fatalf("ConfigAll = %v %v", vals, keys)
	}
	if g, err := c.GCGrace(ctx); err != nil || g != 24*time.Hour {
		t.Fatalf("GCGrace = %v, %v", g, err)
	}
	setConfig(t, c, "gc-grace", "90m")
	if g, err := c.GCGrace(ctx); err != nil || g != 90*time.Minute {
		t.Fatalf("GCGrace = %v, %v", g, err)
	}
	for _, kv := range [][2]string{{"keep-versions", "0"}, {"keep-versions", "-1"}, {"keep-versions", "x"},
		{"keep-versions", ""}, {"gc-grace", "-1h"}, {"gc-grace", "soon"}, {"nope", "1"}} {
		err := c.Tx(ctx, func(tx *Tx) error { return tx.SetConfig(ctx, kv[0], kv[1]) })
		mustErrIs(t, fmt.Sprintf("SetConfig(%s=%q)", kv[0], kv[1]), err, ErrBadSetting)
	}
	_, err = c.Config(ctx, "nope")
	mustErrIs(t, "Config(unknown)", err, ErrBadSetting)
	if v, _ := c.Config(ctx, "keep-versions"); v != "10" {
		t.Fatalf("refused settings changed keep-versions to %q", v)
	}
}

// TestPrefetch: a transaction told which names have no object adds their
// first versions without looking them up, and later versions of the same
// names in it, and of names that had objects, as usual.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	add(t, c, nv("a", "a1", 1))
	add(t, c, nv("d", "d1", 6))
	add(t, c, nv("e", "e1", 7))
	var unchanged Added
	err := c.Tx(ctx, func(tx *Tx) error {
		if err := tx.Prefetch(ctx, []names.Name{names.Must("a"), names.Must("b"), names.Must("c"), names.Must("d"), names.Must("e")}); err != nil {
			return err
		}
		// The object a prefetched serves its first change only: the second
		// must see the version the first added, or both get number 2.
		for _, v := range []NewVersion{nv("a", "a2", 2), nv("a", "a3", 8), nv("b", "b1", 3), nv("b", "b2", 4), nv("c", "c1", 5)} {
			if _, err := tx.AddVersion(ctx, v); err != nil {
				return err
			}
		}
		if _, err := tx.Delete(ctx, names.Must("d")); err != nil {
			return err
		}
		if _, err := tx.AddVersion(ctx, nv("d", "d1", 6)); err != nil {
			return err
		}
		// e's head, as Prefetch read it, has this content already.
		var err error
		unchanged, err = tx.AddVersion(ctx, nv("e", "e1", 7))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !unchanged.Unchanged || unchanged.Version.Num != 1 {
		t.Errorf("e again: %+v, want unchanged version 1", unchanged)
	}
	for name, want := range map[string]int64{"a": 3, "b": 2, "c": 1, "d": 3, "e": 1} {
		v, err := c.Head(ctx, names.Must(name))
		if err != nil || v.Num != want {
			t.Fatalf("head of %s: version %d, %v; want version %d", name, v.Num, err, want)
		}
	}
}
