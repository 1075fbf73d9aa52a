package catalog

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
)

// These tests play what cluster.audit and cluster.pullChanges do, on real
// catalogs, around a catalog that goes back in time: a copy of it taken
// aside (a backup) is put back after peers received later changes.

// backup copies n's catalog aside.
func backup(t *testing.T, n *syncNode) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "backup.db")
	if _, err := rawDB(t, n.path).Exec(`VACUUM INTO ?`, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// putBack replaces n's catalog by a backup and reopens it.
func putBack(t *testing.T, n *syncNode, from string) {
	t.Helper()
	n.c.Close()
	for _, suf := range []string{"", "-wal", "-shm"} {
		os.Remove(n.path + suf)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(n.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), n.path, Options{Origin: n.id, Now: n.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n.c = c
}

// lostPage is one page of an audit of a's history on peer: a's changes
// above after that peer holds and a's catalog does not know, and the
// peer's high-water mark.
func lostPage(t *testing.T, a *syncNode, peer *Catalog, after int64, limit int) (lost []Lost, last, high int64) {
	t.Helper()
	ctx := context.Background()
	ex, last, err := peer.ExportOrigin(ctx, a.id, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	if high, err = peer.Highest(ctx, a.id); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, e := range ex {
		seqs = append(seqs, e.Version.OriginSeq)
	}
	held, err := a.c.Logged(ctx, a.id, seqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ex {
		rv := jsonRoundTrip(t, e.Version)
		if held[rv.OriginSeq].Knows(rv) {
			continue
		}
		in, err := ParseRemote(rv)
		if err != nil {
			t.Fatal(err)
		}
		var chunks []ChunkRef
		if !rv.Gone && !rv.Deleted && rv.Chunks > 0 {
			if chunks, err = fetchChunks(ctx, peer, rv); err != nil {
				t.Fatal(err)
			}
		}
		lost = append(lost, Lost{In: in.From(peer.Origin()), Chunks: chunks})
	}
	return lost, last, high
}

func takeBack(t *testing.T, a *syncNode, lost []Lost, high int64) Taken {
	t.Helper()
	ctx := context.Background()
	var taken Taken
	err := a.c.Tx(ctx, func(tx *Tx) error {
		var err error
		taken, err = tx.TakeBack(ctx, lost, high)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return taken
}

// audit runs a's whole audit against peer, a page of limit at a time.
func audit(t *testing.T, a *syncNode, peer *Catalog, limit int) {
	t.Helper()
	var after int64
	for range 100 {
		lost, last, high := lostPage(t, a, peer, after, limit)
		if last <= after {
			return
		}
		takeBack(t, a, lost, high)
		after = last
	}
	t.Fatal("audit did not end")
}

// pull applies from's log to to as a node does: read again from the start
// when from's log went back in time, skip what to knows, a change sent by
// its origin marked so. It returns the number of forks set aside.
func pull(t *testing.T, from, to *Catalog) (forks int) {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		p, err := to.FindPeer(ctx, from.Origin())
		if err != nil {
			t.Fatal(err)
		}
		page, last, lastAt, err := from.ExportChanges(ctx, p.PullSeq, p.Pull, syncPage, to.Origin())
		if errors.Is(err, ErrCursor) {
			if err := to.Tx(ctx, func(tx *Tx) error { return tx.SetPull(ctx, from.Origin(), 0, Identity{}) }); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if last == p.PullSeq {
			return forks
		}
		err = to.Tx(ctx, func(tx *Tx) error {
			for _, e := range page {
				rv := jsonRoundTrip(t, e.Version)
				held, err := to.logged(ctx, tx, rv.Origin, []int64{rv.OriginSeq})
				if err != nil {
					return err
				}
				if held[rv.OriginSeq].Knows(rv) {
					continue
				}
				var chunks []ChunkRef
				if !rv.Gone && !rv.Deleted && rv.Chunks > 0 {
					if chunks, err = fetchChunks(ctx, from, rv); err != nil {
						return err
					}
				}
				in, err := ParseRemote(rv)
				if err != nil {
					return err
				}
				ap, err := tx.ApplyRemote(ctx, in.From(from.Origin()), chunks)
				if err != nil {
					return err
				}
				if ap.Fork {
					forks++
				}
			}
			return tx.SetPull(ctx, from.Origin(), last, lastAt)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("pull did not end")
	return forks
}

// shows returns what c shows, name=content type (the tests' label).
func shows(t *testing.T, c *Catalog) []string {
	t.Helper()
	var out []string
	err := c.List(context.Background(), root, ListOptions{Recursive: true}, func(e Entry) error {
		v, err := c.Head(context.Background(), names.Must(e.Name))
		if err != nil {
			return err
		}
		out = append(out, e.Name+"="+strings.TrimPrefix(v.ContentType, "type/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// versionCount returns how many versions object name has on c.
func versionCount(t *testing.T, c *Catalog, name string) int {
	t.Helper()
	var n int
	if err := c.r.QueryRow(`SELECT count(*) FROM versions v JOIN objects o ON o.id = v.object_id WHERE o.name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rewound sets up three nodes where a's catalog went back in time: a
// wrote x (a lost change: b holds it, and c too when cToo), then a's
// catalog was restored from a backup taken before, and a wrote y, reusing
// x's identity.
func rewound(t *testing.T, cToo bool) (a, b, c *syncNode) {
	ns := newCluster(t, 3)
	a, b, c = ns[0], ns[1], ns[2]
	a.put(t, t0.Add(time.Hour), "base", "base", 1)
	pull(t, a.c, b.c)
	pull(t, a.c, c.c)
	saved := backup(t, a)
	a.put(t, t0.Add(2*time.Hour), "x", "x1", 2)
	pull(t, a.c, b.c)
	if cToo {
		pull(t, a.c, c.c)
	}
	putBack(t, a, saved)
	a.put(t, t0.Add(3*time.Hour), "y", "y1", 3)
	return a, b, c
}

// Two audits that read the same lost change before either took it back:
// the second takes back nothing and renumbers nothing.
func TestTakeBackTwiceTakesOnce(t *testing.T) {
	a, b, c := rewound(t, true)
	lostB, _, highB := lostPage(t, a, b.c, 0, syncPage)
	lostC, _, highC := lostPage(t, a, c.c, 0, syncPage)
	if len(lostB) != 1 || len(lostC) != 1 {
		t.Fatalf("lost on b %d, on c %d; want 1 each", len(lostB), len(lostC))
	}
	first := takeBack(t, a, lostB, highB)
	if first.Applied != 1 || len(first.Reissued) != 1 {
		t.Fatalf("first take back = %+v; want x taken back, y renumbered", first)
	}
	if second := takeBack(t, a, lostC, highC); second.Applied != 0 || len(second.Reissued) != 0 {
		t.Fatalf("second take back = %+v; want nothing done", second)
	}
	pull(t, a.c, b.c)
	if n := versionCount(t, b.c, "x"); n != 1 {
		t.Errorf("b holds %d versions of x, all the one write; want 1", n)
	}
	if n := versionCount(t, b.c, "y"); n != 1 {
		t.Errorf("b holds %d versions of y; want 1", n)
	}
	want := []string{"base=base", "x=x1", "y=y1"}
	for _, n := range []*syncNode{a, b} {
		if got := shows(t, n.c); !slices.Equal(got, want) {
			t.Errorf("node %s shows %v; want %v", n.id[:4], got, want)
		}
	}
}

// A third node received the forked change under the reused identity (it
// was offline while the lost one went round). After the audit every node
// shows the same objects, with no conflict copy, however the changes go
// round, and the forked identity on the third node is resolved in favour
// of the origin's content.
func TestForkSeenByAThirdNodeConverges(t *testing.T) {
	a, b, c := rewound(t, false)
	pull(t, a.c, c.c) // c gets y under the identity x had
	audit(t, a, b.c, syncPage)
	audit(t, a, c.c, syncPage) // c's copy of y under the old identity is not lost
	for range 3 {
		pull(t, a.c, b.c)
		pull(t, a.c, c.c)
		pull(t, b.c, c.c)
		pull(t, c.c, b.c)
		pull(t, b.c, a.c)
		pull(t, c.c, a.c)
	}
	want := []string{"base=base", "x=x1", "y=y1"}
	for _, n := range []*syncNode{a, b, c} {
		if got := shows(t, n.c); !slices.Equal(got, want) {
			t.Errorf("node %s shows %v; want %v", n.id[:4], got, want)
		}
	}
	// Everyone holds a's x under the identity a gave it first.
	ctx := context.Background()
	for _, n := range []*syncNode{b, c} {
		ax, err := a.c.Head(ctx, names.Must("x"))
		if err != nil {
			t.Fatal(err)
		}
		nx, err := n.c.Head(ctx, names.Must("x"))
		if err != nil {
			t.Fatal(err)
		}
		if ax.SHA256 != nx.SHA256 {
			t.Errorf("node %s holds another x than a", n.id[:4])
		}
	}
	// A change read again from c under the old identity is known to a.
	if forks := pull(t, c.c, a.c); forks != 0 {
		t.Errorf("a found %d forks in c's log; want 0", forks)
	}
}

// The audit reads a peer's copy of this node's history a page at a time:
// a change renumbered on the first page goes above every change the peer
// holds, not onto one the peer shows on a later page, and so does a write
// made between pages.
func TestTakeBackNumbersAboveThePeersHistory(t *testing.T) {
	ns := newCluster(t, 2)
	a, b := ns[0], ns[1]
	saved := backup(t, a)
	for i := range 6 {
		a.put(t, t0.Add(time.Duration(i+1)*time.Minute), "x"+string(rune('0'+i)), "x", 10+i)
	}
	pull(t, a.c, b.c)
	putBack(t, a, saved)
	a.put(t, t0.Add(time.Hour), "y", "y", 99)

	lost, last, high := lostPage(t, a, b.c, 0, 3)
	if high <= last {
		t.Fatalf("b's high-water mark of a = %d, the first page ends at %d; want more pages", high, last)
	}
	taken := takeBack(t, a, lost, high)
	if len(taken.Reissued) != 1 || taken.Reissued[0].To <= high {
		t.Fatalf("take back = %+v; want y renumbered above %d", taken, high)
	}
	between := a.put(t, t0.Add(2*time.Hour), "z", "z", 100)
	ctx := context.Background()
	var later []int64
	for s := last + 1; s <= high; s++ {
		later = append(later, s)
	}
	held, err := a.c.Logged(ctx, a.id, later)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Fatalf("a numbered changes %v between pages, where b holds lost ones (z is %+v)", held, between)
	}
	for range 10 {
		lost, next, high := lostPage(t, a, b.c, last, 3)
		if next <= last {
			break
		}
		if tb := takeBack(t, a, lost, high); len(tb.Reissued) != 0 {
			t.Errorf("later page renumbered %+v", tb.Reissued)
		}
		last = next
	}
	pull(t, a.c, b.c)
	want := []string{"x0=x", "x1=x", "x2=x", "x3=x", "x4=x", "x5=x", "y=y", "z=z"}
	for _, n := range []*syncNode{a, b} {
		if got := shows(t, n.c); !slices.Equal(got, want) {
			t.Errorf("node %s shows %v; want %v", n.id[:4], got, want)
		}
	}
}

// A renumbered write that now follows a concurrent version of its object
// (the lost history had seen that version) leaves it behind: the frontier
// drops it and its conflict copy goes.
func TestTakeBackResolvesWhatTheLostHistoryResolved(t *testing.T) {
	ns := newCluster(t, 2)
	a, b := ns[0], ns[1]
	a.put(t, t0.Add(time.Hour), "base", "base", 1)
	pull(t, a.c, b.c)
	saved := backup(t, a)
	b.put(t, t0.Add(2*time.Hour), "x", "xb", 2)
	pull(t, b.c, a.c)
	a.put(t, t0.Add(3*time.Hour), "x", "xa-lost", 3) // follows b's x
	pull(t, a.c, b.c)
	putBack(t, a, saved)
	a.put(t, t0.Add(4*time.Hour), "x", "xa", 4) // concurrent with b's x
	pull(t, b.c, a.c)
	if got := shows(t, a.c); len(got) != 3 {
		t.Fatalf("before the audit a shows %v; want base, x and x's conflict copy", got)
	}
	audit(t, a, b.c, syncPage)
	want := []string{"base=base", "x=xa"}
	if got := shows(t, a.c); !slices.Equal(got, want) {
		t.Errorf("after the audit a shows %v; want %v", got, want)
	}
	pull(t, a.c, b.c)
	if got := shows(t, b.c); !slices.Equal(got, want) {
		t.Errorf("b shows %v; want %v", got, want)
	}
}

// A change is told from another under its identity by its content hash,
// which covers its object's name; one logged before hashes were, by its
// operation and object.
func TestLoggedSame(t *testing.T) {
	h1, h2 := []byte("hash-one"), []byte("hash-two")
	for _, c := range []struct {
		held Logged
		rv   RemoteVersion
		same bool
	}{
		{Logged{Op: "put", Name: "a", Hash: h1}, RemoteVersion{Op: "put", Name: "a", Hash: h1}, true},
		{Logged{Op: "put", Name: "a", Hash: h1}, RemoteVersion{Op: "put", Name: "a", Hash: h2}, false},
		{Logged{Op: "put", Name: "a", Hash: h1}, RemoteVersion{Op: "delete", Name: "a", Hash: h1}, false},
		{Logged{Op: "put", Name: "a"}, RemoteVersion{Op: "put", Name: "a", Hash: h2}, true},
		{Logged{Op: "put", Name: "a"}, RemoteVersion{Op: "put", Name: "b", Hash: h2}, false},
		{Logged{Op: "put", Name: "a", Hash: h1}, RemoteVersion{Op: "put", Name: "b"}, false},
		{Logged{}, RemoteVersion{Op: "put", Name: "a"}, false},
	} {
		if got := c.held.Same(c.rv); got != c.same {
			t.Errorf("%+v.Same(%+v) = %v, want %v", c.held, c.rv, got, c.same)
		}
	}
}
