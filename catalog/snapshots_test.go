package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/retention"
	"github.com/loftstore/loft/store"
)

// mirror finishes a mirror of prefix holding exactly the names given:
// what else is live below prefix is deleted, and a snapshot recorded.
func mirror(t *testing.T, c *Catalog, prefix string, have ...string) Snapshot {
	t.Helper()
	keep := map[string]bool{}
	for _, h := range have {
		keep[h] = true
	}
	var s Snapshot
	err := c.Tx(context.Background(), func(tx *Tx) error {
		removed, err := tx.DeleteMissing(context.Background(), names.Must(prefix).AsPrefix(), func(n string) bool { return keep[n] })
		if err != nil {
			return err
		}
		s, err = tx.AddSnapshot(context.Background(), names.Must(prefix).AsPrefix(), Snapshot{Files: int64(len(have)), Removed: removed})
		return err
	})
	if err != nil {
		t.Fatalf("mirror %s: %v", prefix, err)
	}
	return s
}

// listAt returns name=label of every live object below prefix at seq,
// where label is the version number.
func listAt(t *testing.T, c *Catalog, prefix string, seq int64) []string {
	t.Helper()
	var out []string
	p, _ := names.ParsePrefix(prefix)
	err := c.List(context.Background(), p, ListOptions{Recursive: true, Below: true, AtSeq: seq}, func(e Entry) error {
		out = append(out, e.Name+"@"+string(rune('0'+e.Head.Num)))
		return nil
	})
	if err != nil {
		t.Fatalf("List at %d: %v", seq, err)
	}
	return out
}

func TestSnapshotSeesTheTreeAsItWas(t *testing.T) {
	clk := newClock()
	c, _ := newCatalog(t, Options{Now: clk.Now})
	add(t, c, nv("t/a", "a1", 1))
	add(t, c, nv("t/b", "b1", 2))
	add(t, c, nv("other", "o1", 3))
	s1 := mirror(t, c, "t", "t/a", "t/b")

	clk.Advance(time.Hour)
	add(t, c, nv("t/a", "a2", 4))
	add(t, c, nv("t/c", "c1", 5))
	s2 := mirror(t, c, "t", "t/a", "t/c")
	if s2.Removed != 1 {
		t.Fatalf("second mirror removed %d objects, want 1 (t/b)", s2.Removed)
	}
	clk.Advance(time.Hour)
	add(t, c, nv("t/d", "d1", 6)) // after every snapshot

	if got, want := strings.Join(listAt(t, c, "t", s1.Seq), " "), "t/a@1 t/b@1"; got != want {
		t.Errorf("at the first snapshot: %s, want %s", got, want)
	}
	if got, want := strings.Join(listAt(t, c, "t", s2.Seq), " "), "t/a@2 t/c@1"; got != want {
		t.Errorf("at the second snapshot: %s, want %s", got, want)
	}
	if got, want := strings.Join(listAt(t, c, "t", 0), " "), "t/a@2 t/c@1 t/d@1"; got != want {
		t.Errorf("now: %s, want %s", got, want)
	}
	if v, err := c.HeadAt(context.Background(), names.Must("t/b"), s2.Seq); err != nil || !v.Deleted {
		t.Errorf("t/b at the second snapshot: %+v, %v; want its deletion", v, err)
	}
	if _, err := c.HeadAt(context.Background(), names.Must("t/c"), s1.Seq); !errors.Is(err, ErrNotFound) {
		t.Errorf("t/c at the first snapshot: %v, want not found", err)
	}

	ctx := context.Background()
	tp := names.Must("t").AsPrefix()
	for _, tc := range []struct {
		what string
		id   string
		at   time.Time
		want string
		err  error
	}{
		{"by ID", s1.ID, time.Time{}, s1.ID, nil},
		{"by the beginning of its ID", s2.ID[:4], time.Time{}, s2.ID, nil},
		{"by a time between", "", t0.Add(90 * time.Minute), s2.ID, nil},
		{"by the first snapshot's own time", "", t0, s1.ID, nil},
		{"before the first", "", t0.Add(-time.Second), "", ErrNoSnapshot},
		{"unknown ID", "ffffffff", time.Time{}, "", ErrNoSnapshot},
		{"too short an ID", "ab", time.Time{}, "", ErrNoSnapshot},
	} {
		s, err := c.FindSnapshot(ctx, tp, tc.id, tc.at)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.what, err, tc.err)
			}
			continue
		}
		if err != nil || s.ID != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.what, s.ID, err, tc.want)
		}
	}
	// A snapshot of t covers t/sub; not "other", nor "t2".
	if _, err := c.FindSnapshot(ctx, names.Must("t/sub").AsPrefix(), s1.ID, time.Time{}); err != nil {
		t.Errorf("a snapshot of t for t/sub: %v", err)
	}
	for _, p := range []string{"other", "t2"} {
		if _, err := c.FindSnapshot(ctx, names.Must(p).AsPrefix(), s1.ID, time.Time{}); !errors.Is(err, fault.Invalid) {
			t.Errorf("a snapshot of t for %s: %v, want an invalid-argument error", p, err)
		}
		if _, err := c.FindSnapshot(ctx, names.Must(p).AsPrefix(), "", t0.Add(3*time.Hour)); !errors.Is(err, ErrNoSnapshot) {
			t.Errorf("newest snapshot for %s: %v, want none", p, err)
		}
	}
	all, err := c.Snapshots(ctx, names.Prefix{})
	if err != nil || len(all) != 2 || all[0].ID != s1.ID || all[1].ID != s2.ID {
		t.Fatalf("Snapshots: %+v, %v", all, err)
	}
	if got, _ := c.Snapshots(ctx, names.Must("other").AsPrefix()); len(got) != 0 {
		t.Errorf("snapshots of other: %+v, want none", got)
	}
}

// A version a snapshot sees outlives keep-versions, tombstones included,
// and goes with the pruning once no snapshot sees it.
func TestPruneKeepsWhatSnapshotsSee(t *testing.T) {
	c, _ := newCatalog(t, Options{})
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("t/a", "a1", 1))
	add(t, c, nv("t/b", "b1", 2))
	if _, err := del(c, "t/b"); err != nil {
		t.Fatal(err)
	}
	s := mirror(t, c, "t", "t/a")
	add(t, c, nv("t/a", "a2", 3))
	add(t, c, nv("t/a", "a3", 4))
	add(t, c, nv("t/b", "b2", 5))
	add(t, c, nv("t/b", "b3", 6))

	nums := func(name string) []int64 {
		vs, err := c.Versions(context.Background(), names.Must(name))
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, v := range vs {
			out = append(out, v.Num)
		}
		return out
	}
	// t/a: 3 is the head, 1 the snapshot's, 2 pruned. t/b: the deletion (2)
	// is what the snapshot sees; without it, b1 would come back there.
	if got := nums("t/a"); len(got) != 2 || got[0] != 3 || got[1] != 1 {
		t.Errorf("t/a versions %v, want [3 1]", got)
	}
	if got := nums("t/b"); len(got) != 2 || got[0] != 4 || got[1] != 2 {
		t.Errorf("t/b versions %v, want [4 2]", got)
	}
	if got, want := strings.Join(listAt(t, c, "t", s.Seq), " "), "t/a@1"; got != want {
		t.Errorf("at the snapshot: %s, want %s", got, want)
	}
	// Another object's snapshot protects nothing here.
	add(t, c, nv("u", "u1", 7))
	add(t, c, nv("u", "u2", 8))
	if got := nums("u"); len(got) != 1 {
		t.Errorf("u versions %v, want only the head", got)
	}
}

func TestFilesCache(t *testing.T) {
	c, _ := newCatalog(t, Options{})
	ctx := context.Background()
	st := FileStat{Size: 1001, MTime: 5, CTime: 6, Ino: 1 << 40, Dev: 1<<63 + 3}
	a := add(t, c, nv("f", "one", 1))
	if err := c.Tx(ctx, func(tx *Tx) error { return tx.CacheFile(ctx, names.Must("f"), st, a.Version.Num) }); err != nil {
		t.Fatal(err)
	}
	hit := func() bool {
		t.Helper()
		_, ok, err := c.CachedFile(ctx, names.Must("f"), st)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !hit() {
		t.Fatal("the file as cached: a miss")
	}
	for _, other := range []FileStat{
		{Size: 1002, MTime: 5, CTime: 6, Ino: 1 << 40, Dev: 1<<63 + 3},
		{Size: 1001, MTime: 5, CTime: 7, Ino: 1 << 40, Dev: 1<<63 + 3}, // same mtime, new ctime
		{Size: 1001, MTime: 5, CTime: 6, Ino: 2, Dev: 1<<63 + 3},
	} {
		if _, ok, _ := c.CachedFile(ctx, names.Must("f"), other); ok {
			t.Errorf("%+v: a hit for a file that changed", other)
		}
	}
	add(t, c, nv("f", "two", 2)) // another put (or a peer) changed the object
	if hit() {
		t.Error("a hit after the head moved")
	}
	restore(c, "f", 1)
	if hit() {
		t.Error("a hit on a restored version the cache did not record")
	}
	if err := c.Tx(ctx, func(tx *Tx) error { return tx.CacheFile(ctx, names.Must("f"), st, 3) }); err != nil {
		t.Fatal(err)
	}
	if !hit() {
		t.Fatal("recorded again: a miss")
	}
	if _, err := del(c, "f"); err != nil {
		t.Fatal(err)
	}
	if hit() {
		t.Error("a hit on a deleted object")
	}
}

func TestKindsAreChecked(t *testing.T) {
	c, _ := newCatalog(t, Options{})
	ctx := context.Background()
	link := NewVersion{Name: names.Must("l"), Kind: KindSymlink, Target: "../x", Mode: 0o777, MTime: t0}
	if a := add(t, c, link); a.Version.Kind != KindSymlink || a.Version.Target != "../x" {
		t.Fatalf("link added as %+v", a.Version)
	}
	if a := add(t, c, link); !a.Unchanged {
		t.Error("the same link again made a version")
	}
	link.Target = "/elsewhere"
	if a := add(t, c, link); a.Unchanged || a.Version.Num != 2 {
		t.Errorf("a new target: %+v", a)
	}
	dir := NewVersion{Name: names.Must("l"), Kind: KindDir, Mode: 0o755, MTime: t0}
	if a := add(t, c, dir); a.Version.Kind != KindDir || a.Version.Num != 3 {
		t.Errorf("a link that became a directory: %+v", a)
	}
	for _, bad := range []NewVersion{
		{Name: names.Must("b"), Kind: KindSymlink},
		{Name: names.Must("b"), Kind: KindSymlink, Target: strings.Repeat("x", MaxTarget+1)},
		{Name: names.Must("b"), Kind: KindSymlink, Target: "a\x00b"},
		{Name: names.Must("b"), Kind: KindDir, Chunks: refs(1), Size: 1001},
		{Name: names.Must("b"), Kind: KindDir, Target: "x"},
		{Name: names.Must("b"), Kind: "fifo"},
	} {
		err := c.Tx(ctx, func(tx *Tx) error { _, err := tx.AddVersion(ctx, bad); return err })
		if !errors.Is(err, fault.Invalid) {
			t.Errorf("AddVersion(%+v): %v, want an invalid-argument error", bad.Kind, err)
		}
	}
	good := RemoteVersion{Origin: store.PeerID{7}.String(), OriginSeq: 1, Op: "put", Name: "x", Kind: KindSymlink,
		Target: "y", Mode: 0o777, MTime: t0, Created: t0}
	good.VV = VV{good.Origin: 1}
	err := c.Tx(ctx, func(tx *Tx) error { _, err := tx.applyRV(ctx, good, nil); return err })
	if err != nil {
		t.Fatalf("a peer's link: %v", err)
	}
	if v, err := c.Head(ctx, names.Must("x")); err != nil || v.Kind != KindSymlink || v.Target != "y" {
		t.Fatalf("a peer's link arrived as %+v, %v", v, err)
	}
	for _, mutate := range []func(*RemoteVersion){
		func(rv *RemoteVersion) { rv.Target = "" },
		func(rv *RemoteVersion) { rv.Kind = "socket" },
		func(rv *RemoteVersion) { rv.Kind, rv.Size, rv.Chunks = KindDir, 1, 1 },
		func(rv *RemoteVersion) { rv.Deleted = true },
	} {
		rv := good
		mutate(&rv)
		if _, err := ParseRemote(rv); !errors.Is(err, ErrBadChange) {
			t.Errorf("ParseRemote(%+v): %v, want a bad change", rv, err)
		}
	}
}

func versionNums(t *testing.T, c *Catalog, name string) []int64 {
	t.Helper()
	vs, err := c.Versions(context.Background(), names.Must(name))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, v := range vs {
		out = append(out, v.Num)
	}
	return out
}

// A purge drops every version here and, once the change travelled, on
// the peer; a version the peer wrote concurrently with it stays there.
func TestPurgeTravels(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	a.put(t, t0, "p/x", "x1", 1)
	a.put(t, t0.Add(time.Minute), "p/x", "x2", 2)
	a.put(t, t0, "p/y", "y1", 3)
	syncOnce(t, a.c, b.c)
	if got := versionNums(t, b.c, "p/x"); len(got) != 2 {
		t.Fatalf("b has versions %v of p/x before the purge", got)
	}
	b.put(t, t0.Add(2*time.Minute), "p/y", "y2-concurrent", 4) // b writes p/y; a has not seen it
	err := a.c.Tx(ctx, func(tx *Tx) error {
		for _, n := range []string{"p/x", "p/y"} {
			if _, err := tx.Purge(ctx, names.Must(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := versionNums(t, a.c, "p/x"); got != nil {
		t.Fatalf("a still has p/x versions %v", got)
	}
	syncOnce(t, a.c, b.c)
	if got := versionNums(t, b.c, "p/x"); got != nil {
		t.Errorf("b still has p/x versions %v after the purge travelled", got)
	}
	v, err := b.c.Head(ctx, names.Must("p/y"))
	if err != nil || v.SHA256 != digest("y2-concurrent") {
		t.Errorf("b's concurrent write of p/y: %+v, %v; want it kept", v, err)
	}
	if got := versionNums(t, b.c, "p/y"); len(got) != 1 {
		t.Errorf("b has p/y versions %v, want its own alone", got)
	}
	// The chunks a's versions held are garbage on both.
	for _, n := range []*syncNode{a, b} {
		var refs int64
		id := cid(1)
		if err := n.c.r.QueryRowContext(ctx, `SELECT refs FROM chunks WHERE hash = ?`, id[:]).Scan(&refs); err == nil && refs != 0 {
			t.Errorf("%s: chunk 1 still has %d references", n.id[:4], refs)
		}
	}
}

// Forget keeps what the policy keeps, every object's head, and every
// version a kept snapshot sees; dropped versions are forgotten on peers.
func TestForget(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	day := 24 * time.Hour
	var snaps []Snapshot
	for d := range 5 {
		a.put(t, t0.Add(time.Duration(d)*day), "t/f", fmt.Sprintf("f%d", d), 10+d)
		if d == 0 {
			a.put(t, t0, "t/once", "once", 20)
		}
		snaps = append(snaps, mirror(t, a.c, "t", "t/f", "t/once"))
	}
	syncOnce(t, a.c, b.c)
	a.at(t0.Add(5 * day))
	res, err := a.c.Forget(ctx, names.Must("t").AsPrefix(), retention.Policy{Last: 2}, time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := a.c.Snapshots(ctx, names.Prefix{})
	if len(left) != 2 || left[0].ID != snaps[3].ID || left[1].ID != snaps[4].ID {
		t.Fatalf("snapshots left: %+v", left)
	}
	// t/f: versions 4 and 5 (keep-last 2, and the kept snapshots see them);
	// t/once: its only version, the head.
	if got := versionNums(t, a.c, "t/f"); fmt.Sprint(got) != "[5 4]" {
		t.Errorf("t/f keeps versions %v, want [5 4]", got)
	}
	if got := versionNums(t, a.c, "t/once"); fmt.Sprint(got) != "[1]" {
		t.Errorf("t/once keeps %v", got)
	}
	if res.Dropped != 3 {
		t.Errorf("forget dropped %d versions, want 3: %+v", res.Dropped, res.Versions)
	}
	// The snapshots left still restore exactly.
	if got := strings.Join(listAt(t, a.c, "t", left[0].Seq), " "); got != "t/f@4 t/once@1" {
		t.Errorf("at the older snapshot left: %s", got)
	}
	syncOnce(t, a.c, b.c)
	if got := versionNums(t, b.c, "t/f"); len(got) != 2 {
		t.Errorf("b keeps t/f versions %v after the forget travelled, want 2", got)
	}
	// A policy with no rule is refused.
	if _, err = a.c.Forget(ctx, names.Prefix{}, retention.Policy{}, time.UTC, false); !errors.Is(err, fault.Invalid) {
		t.Errorf("forget without rules: %v", err)
	}
}

// A purge and a forget reach a node two hops away, through the node in
// between; a forget from a peer keeps what this node's own snapshots see.
func TestDropsRelayAndSpareLocalSnapshots(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.put(t, t0, "p/x", "x1", 1)
	a.put(t, t0, "t/f", "f1", 2)
	syncOnce(t, a.c, b.c)
	syncOnce(t, b.c, c.c)
	snapC := mirror(t, c.c, "t", "t/f") // c's own snapshot sees t/f version 1
	a.put(t, t0.Add(time.Hour), "t/f", "f2", 3)
	a.put(t, t0.Add(2*time.Hour), "t/f", "f3", 4)
	err := a.c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.Purge(ctx, names.Must("p/x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Forget(ctx, names.Must("t").AsPrefix(), retention.Policy{Last: 1}, time.UTC, false); err != nil {
		t.Fatal(err)
	}
	syncOnce(t, a.c, b.c)
	syncOnce(t, b.c, c.c) // c hears of both from b only
	if got := versionNums(t, c.c, "p/x"); got != nil {
		t.Errorf("c still has p/x %v: the purge did not travel two hops", got)
	}
	if got := strings.Join(listAt(t, c.c, "t", snapC.Seq), " "); got != "t/f@1" {
		t.Errorf("c's snapshot now sees %q, want t/f@1", got)
	}
	if got := versionNums(t, b.c, "t/f"); len(got) != 1 {
		t.Errorf("b keeps t/f versions %v, want the head alone", got)
	}
}
