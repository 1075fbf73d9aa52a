package catalog

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/store"
)

func TestPeersAddFind(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{Origin: store.PeerID{1}.String()})
	p1 := store.PeerID{1, 2, 3, 4}.String()
	p2 := store.PeerID{1, 2, 3, 5}.String() // shares a long prefix with p1
	p3 := store.PeerID{200}.String()
	if p1[:5] != p2[:5] {
		t.Fatalf("test IDs %s, %s do not share a prefix", p1, p2)
	}
	for _, p := range []Peer{
		{ID: p1, Name: "laptop", Addrs: []string{"10.0.0.1:7419"}},
		{ID: p2, Name: "server"},
		{ID: p3},
	} {
		if err := c.AddPeer(ctx, p); err != nil {
			t.Fatalf("AddPeer(%s): %v", p.ID, err)
		}
	}
	for _, bad := range []string{"", "laptop", p1[:51], strings.ToUpper(p1) + "A", "node-1"} {
		if err := c.AddPeer(ctx, Peer{ID: bad}); err == nil {
			t.Errorf("AddPeer(%q) accepted a bad ID", bad)
		}
	}
	ps, err := c.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	want := []string{p1, p2, p3}
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("Peers = %v, want %v (by ID)", ids, want)
	}
	if ps[0].Added.IsZero() || ps[0].PullSeq != 0 || !ps[0].LastSeen.IsZero() {
		t.Errorf("new peer = %+v", ps[0])
	}

	for _, tc := range []struct {
		ref  string
		want string // "" for ErrNotFound, "ambiguous" for an ambiguity error
	}{
		{p1, p1},
		{p2, p2},
		{"laptop", p1},
		{"server", p2},
		{p3[:4], p3},
		{strings.ToUpper(p3[:6]), p3},
		{p1[:7], p1}, // p1 and p2 differ from the 7th character on
		{p1[:4], "ambiguous"},
		{p1[:6], "ambiguous"},
		{p3[:3], ""}, // too short for a prefix
		{"nobody", ""},
		{"", ""},
		{store.PeerID{9}.String(), ""},
	} {
		got, err := c.FindPeer(ctx, tc.ref)
		switch tc.want {
		case "":
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("FindPeer(%q) = %s, %v; want ErrNotFound", tc.ref, got.ID, err)
			}
		case "ambiguous":
			if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "ambiguous") {
				t.Errorf("FindPeer(%q) = %s, %v; want an ambiguity error", tc.ref, got.ID, err)
			}
		default:
			if err != nil || got.ID != tc.want {
				t.Errorf("FindPeer(%q) = %s, %v; want %s", tc.ref, got.ID, err, tc.want)
			}
		}
	}
	if p, _ := c.FindPeer(ctx, "laptop"); !slices.Equal(p.Addrs, []string{"10.0.0.1:7419"}) {
		t.Errorf("laptop addresses = %v", p.Addrs)
	}
	if p, _ := c.FindPeer(ctx, p3); p.Addrs == nil || len(p.Addrs) != 0 {
		t.Errorf("peer without addresses has %#v, want empty", p.Addrs)
	}

	// Re-adding updates name and addresses, keeps what is left empty and
	// keeps the cursor.
	if err := c.Tx(ctx, func(tx *Tx) error { return tx.SetPull(ctx, p1, 42, Identity{}) }); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(ctx, Peer{ID: p1}); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.FindPeer(ctx, p1); p.Name != "laptop" || !slices.Equal(p.Addrs, []string{"10.0.0.1:7419"}) || p.PullSeq != 42 {
		t.Errorf("after re-adding with empty fields: %+v", p)
	}
	if err := c.AddPeer(ctx, Peer{ID: p1, Name: "old-laptop", Addrs: []string{"10.0.0.9:1"}}); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.FindPeer(ctx, p1); p.Name != "old-laptop" || !slices.Equal(p.Addrs, []string{"10.0.0.9:1"}) || p.PullSeq != 42 {
		t.Errorf("after re-adding: %+v", p)
	}
	if _, err := c.FindPeer(ctx, "laptop"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old name still finds the peer: %v", err)
	}

	seen := t0.Add(time.Hour)
	if err := c.SeenPeer(ctx, p2, seen, `{"free":1}`, "online"); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.FindPeer(ctx, p2); !p.LastSeen.Equal(seen) || p.Info != `{"free":1}` {
		t.Errorf("after SeenPeer: %+v", p)
	}
	// Adding peers is logged.
	chs, _ := c.Changes(ctx, 0, 100)
	n := 0
	for _, ch := range chs {
		if ch.Op == "peer-add" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d peer-add changes logged, want 5", n)
	}
}

func TestRemovePeerDropsReplicas(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{Origin: store.PeerID{1}.String()})
	x, y := store.PeerID{2}.String(), store.PeerID{3}.String()
	for _, id := range []string{x, y} {
		if err := c.AddPeer(ctx, Peer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	add(t, c, nv("f", "f", 1, 2))
	both := []store.ID{cid(1), cid(2)}
	if err := c.AddReplicas(ctx, x, both); err != nil {
		t.Fatal(err)
	}
	if err := c.AddReplicas(ctx, y, both[:1]); err != nil {
		t.Fatal(err)
	}
	if h, _ := c.Holders(ctx, cid(1)); !slices.Equal(h, sortedStrings(x, y)) {
		t.Fatalf("Holders before = %v", h)
	}
	if err := c.RemovePeer(ctx, x); err != nil {
		t.Fatal(err)
	}
	if h, err := c.Holders(ctx, cid(1)); err != nil || !slices.Equal(h, []string{y}) {
		t.Errorf("Holders(1) after removing x = %v, %v; want [y]", h, err)
	}
	if h, err := c.Holders(ctx, cid(2)); err != nil || len(h) != 0 {
		t.Errorf("Holders(2) after removing x = %v, %v; want none", h, err)
	}
	if _, err := c.FindPeer(ctx, x); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed peer still found: %v", err)
	}
	if err := c.RemovePeer(ctx, x); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing twice: %v, want ErrNotFound", err)
	}
	// The cursor goes with the peer: pinned again, it starts over.
	if err := c.AddPeer(ctx, Peer{ID: x}); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.FindPeer(ctx, x); p.PullSeq != 0 {
		t.Errorf("re-pinned peer kept cursor %d", p.PullSeq)
	}
	if h, _ := c.Holders(ctx, cid(2)); len(h) != 0 {
		t.Errorf("re-pinned peer got its replicas back: %v", h)
	}
}

func sortedStrings(s ...string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func proofFor(nonce string) func([]byte) []byte {
	return func(secret []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(nonce))
		return m.Sum(nil)
	}
}

func TestInvites(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{Origin: store.PeerID{1}.String()})
	joiner := Peer{ID: store.PeerID{2}.String(), Name: "phone", Addrs: []string{"192.168.1.5:7419"}}
	s1, s2 := []byte("secret-one-0123456789"), []byte("secret-two-0123456789")
	now := t0
	if ok, err := c.InvitesPending(ctx, now); err != nil || ok {
		t.Fatalf("InvitesPending with none = %v, %v", ok, err)
	}
	if err := c.AddInvite(ctx, s1, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.AddInvite(ctx, s2, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.InvitesPending(ctx, now); err != nil || !ok {
		t.Fatalf("InvitesPending = %v, %v; want true", ok, err)
	}
	pf := proofFor("nonce")

	// Wrong proofs are refused and pin nothing.
	for _, proof := range [][]byte{nil, {}, pf([]byte("other secret")), proofFor("other nonce")(s1), pf(s1)[:16]} {
		if err := c.UseInvite(ctx, now, proof, pf, joiner); !errors.Is(err, ErrInvite) {
			t.Errorf("UseInvite with a wrong proof: %v, want ErrInvite", err)
		}
	}
	if _, err := c.FindPeer(ctx, joiner.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused join pinned the peer: %v", err)
	}
	// A bad peer ID is refused before any invite is consumed.
	if err := c.UseInvite(ctx, now, pf(s1), pf, Peer{ID: "not-a-node"}); err == nil || errors.Is(err, ErrInvite) {
		t.Errorf("UseInvite with a bad peer ID: %v", err)
	}
	// An expired invite is refused (expiry is exclusive).
	if err := c.UseInvite(ctx, now.Add(time.Minute), pf(s2), pf, joiner); !errors.Is(err, ErrInvite) {
		t.Errorf("UseInvite of an expired invite: %v, want ErrInvite", err)
	}
	if _, err := c.FindPeer(ctx, joiner.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired invite pinned the peer: %v", err)
	}

	// The right proof joins, once.
	if err := c.UseInvite(ctx, now.Add(2*time.Minute), pf(s1), pf, joiner); err != nil {
		t.Fatalf("UseInvite: %v", err)
	}
	p, err := c.FindPeer(ctx, joiner.ID)
	if err != nil || p.Name != "phone" || !slices.Equal(p.Addrs, joiner.Addrs) {
		t.Fatalf("joined peer = %+v, %v", p, err)
	}
	if err := c.UseInvite(ctx, now.Add(2*time.Minute), pf(s1), pf, Peer{ID: store.PeerID{3}.String()}); !errors.Is(err, ErrInvite) {
		t.Errorf("second use of an invite: %v, want ErrInvite", err)
	}
	if _, err := c.FindPeer(ctx, store.PeerID{3}.String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("second use pinned another peer: %v", err)
	}
	// s2 is expired at that time and s1 used: nothing pending.
	if ok, _ := c.InvitesPending(ctx, now.Add(2*time.Minute)); ok {
		t.Errorf("InvitesPending after use and expiry = true")
	}
	// Before s2's expiry, s2 is still pending and usable.
	if ok, _ := c.InvitesPending(ctx, now.Add(30*time.Second)); !ok {
		t.Errorf("InvitesPending for the unused invite = false")
	}
	if err := c.UseInvite(ctx, now.Add(30*time.Second), pf(s2), pf, Peer{ID: store.PeerID{4}.String()}); err != nil {
		t.Errorf("UseInvite of the second invite: %v", err)
	}
	if ok, _ := c.InvitesPending(ctx, now); ok {
		t.Errorf("InvitesPending after both were used = true")
	}
	chs, _ := c.Changes(ctx, 0, 100)
	p4 := store.PeerID{4}.String()
	if n := len(chs); n == 0 || chs[n-1].Op != "peer-add" || chs[n-1].Detail != p4 {
		t.Errorf("join not logged: %+v", chs)
	}
}

func TestHeldAmongKnownStoreReceived(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	b.put(t, t0.Add(time.Second), "local", "local", 1, 2)
	a.put(t, t0.Add(time.Second), "remote", "remote", 3, 4)
	syncOnce(t, a.c, b.c)
	ids := []store.ID{cid(1), cid(2), cid(3), cid(4), cid(5)}
	check := func(what string, wantHeld, wantKnown []int) {
		t.Helper()
		held, err := b.c.HeldAmong(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		known, err := b.c.Known(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if got := idIndexes(held); !slices.Equal(got, wantHeld) {
			t.Errorf("%s: held %v, want %v", what, got, wantHeld)
		}
		if got := idIndexes(known); !slices.Equal(got, wantKnown) {
			t.Errorf("%s: known %v, want %v", what, got, wantKnown)
		}
	}
	check("after sync", []int{1, 2}, []int{1, 2, 3, 4})
	tot, err := b.c.HeldTotals(ctx)
	if err != nil || tot.Chunks != 2 || tot.Bytes != ref(1).Stored+ref(2).Stored {
		t.Errorf("HeldTotals = %+v, %v", tot, err)
	}

	b.clk.Advance(time.Minute)
	if had, err := b.c.StoreReceived(ctx, []ChunkRef{ref(3), ref(5)}); err != nil || had != 0 {
		t.Fatalf("StoreReceived(3, 5) = %d, %v; want none held before", had, err)
	}
	if had, err := b.c.StoreReceived(ctx, []ChunkRef{ref(1), ref(3), ref(4)}); err != nil || had != 2 {
		t.Fatalf("StoreReceived(1, 3, 4) = %d, %v; want 2 held before (1 and 3)", had, err)
	}
	if err := b.c.Unhold(ctx, cid(4)); err != nil {
		t.Fatal(err)
	}
	check("after StoreReceived(3, 5)", []int{1, 2, 3, 5}, []int{1, 2, 3, 4, 5})
	if st, _ := b.c.Lookup(ctx, cid(3)); st.Refs != 1 || !st.Held || st.ZeroSeq != 0 {
		t.Errorf("received referenced chunk = %+v, want its reference kept", st)
	}
	st, _ := b.c.Lookup(ctx, cid(5))
	if st.Refs != 0 || !st.Held || st.Stored != ref(5).Stored {
		t.Errorf("received unreferenced chunk = %+v", st)
	}
	// It is garbage, stamped now, until a version uses it.
	g, err := b.c.Garbage(ctx, SweepRule{Before: b.clk.Now()}, 10)
	if err != nil || len(g) != 1 || g[0].ID != cid(5) || !g[0].ZeroAt.Equal(b.clk.Now()) {
		t.Errorf("garbage after StoreReceived = %+v, %v; want chunk 5 stamped now", g, err)
	}
	if in, _ := b.c.InUseAmong(ctx, []store.ID{cid(5)}, b.clk.Now().Add(-time.Second)); !in.Has(cid(5)) {
		t.Errorf("freshly received chunk not in use for a peer's GC within its grace")
	}
	tot, _ = b.c.HeldTotals(ctx)
	if tot.Chunks != 4 || tot.Bytes != ref(1).Stored+ref(2).Stored+ref(3).Stored+ref(5).Stored {
		t.Errorf("HeldTotals = %+v", tot)
	}

	if err := b.c.Unhold(ctx, cid(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.c.Unhold(ctx, cid(99)); err != nil {
		t.Errorf("Unhold of an unknown chunk: %v", err)
	}
	check("after Unhold(1)", []int{2, 3, 5}, []int{1, 2, 3, 4, 5})
	// A local write of a chunk makes it held again.
	b.put(t, t0.Add(2*time.Minute), "again", "again", 1, 4)
	check("after a local put of 1 and 4", []int{1, 2, 3, 4, 5}, []int{1, 2, 3, 4, 5})

	// Many IDs (more than one query's worth).
	var many []store.ID
	for i := range 1234 {
		many = append(many, cid(1000+i))
	}
	many = append(many, cid(2))
	held, err := b.c.HeldAmong(ctx, many)
	if err != nil || len(held) != 1 || !held.Has(cid(2)) {
		t.Errorf("HeldAmong(1235 ids) = %d, %v", len(held), err)
	}
	if held, err := b.c.HeldAmong(ctx, nil); err != nil || len(held) != 0 {
		t.Errorf("HeldAmong(nil) = %v, %v", held, err)
	}
	checkSyncInvariants(t, a, b)
}

func idIndexes(s store.IDSet) []int {
	var out []int
	for i := range 100 {
		if s.Has(cid(i)) {
			out = append(out, i)
		}
	}
	return out
}

func TestInUseAmong(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, _ := newCatalog(t, Options{Origin: store.PeerID{1}.String(), Now: clk.Now})
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("ref", "ref", 1))
	add(t, c, nv("old", "old1", 2))
	add(t, c, nv("old", "old2", 9)) // chunk 2 unreferenced now (t0)
	tOld := clk.Now()
	clk.Advance(time.Hour)
	add(t, c, nv("new", "new1", 3))
	add(t, c, nv("new", "new2", 9)) // chunk 3 unreferenced at t0+1h
	tNew := clk.Now()
	ids := []store.ID{cid(1), cid(2), cid(3), cid(4)} // 4 is unknown
	since := tOld.Add(30 * time.Minute)
	in, err := c.InUseAmong(ctx, ids, since)
	if err != nil {
		t.Fatal(err)
	}
	if got := idIndexes(in); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("InUseAmong(since between) = %v, want [1 3] (referenced, and unreferenced after since)", got)
	}
	if got := idIndexes(must(c.InUseAmong(ctx, ids, tNew))); !slices.Equal(got, []int{1}) {
		t.Errorf("InUseAmong(since = the later drop) = %v, want [1]", got)
	}
	if got := idIndexes(must(c.InUseAmong(ctx, ids, tOld.Add(-time.Nanosecond)))); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("InUseAmong(since before both drops) = %v, want [1 2 3]", got)
	}

	// A live session protects what became unreferenced after it started,
	// not what was garbage before.
	s, err := c.BeginSession(ctx, "put")
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	add(t, c, nv("ref", "ref2", 9)) // chunk 1 unreferenced, after the session started
	late := clk.Now().Add(time.Hour)
	// 1 was dropped while the session lives; 3 by change StartSeq itself,
	// which the session's rule spares too (at or after StartSeq); 2 before.
	if got := idIndexes(must(c.InUseAmong(ctx, ids, late))); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("InUseAmong with a live session = %v, want [1 3]", got)
	}
	// The same answer as this node's own sweep rule under the session.
	g, err := c.Garbage(ctx, SweepRule{Before: late, Live: true, BelowSeq: s.StartSeq}, 10)
	if err != nil || len(g) != 1 || g[0].ID != cid(2) {
		t.Errorf("Garbage under the session = %+v, %v; want chunk 2 only", g, err)
	}
	if err := s.End(ctx); err != nil {
		t.Fatal(err)
	}
	if got := idIndexes(must(c.InUseAmong(ctx, ids, late))); len(got) != 0 {
		t.Errorf("InUseAmong after the session ended = %v, want none", got)
	}
	// Agreement with this node's own sweep rule.
	g, err = c.Garbage(ctx, SweepRule{Before: late}, 10)
	if err != nil || len(g) != 3 {
		t.Errorf("Garbage = %+v, %v; want chunks 1, 2, 3", g, err)
	}
	// Referenced again, it is in use whatever since says.
	add(t, c, nv("back", "back", 2))
	if got := idIndexes(must(c.InUseAmong(ctx, ids, late))); !slices.Equal(got, []int{2}) {
		t.Errorf("InUseAmong after re-referencing 2 = %v, want [2]", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestReplicasHoldersEachReferenced(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 3)
	a, b := nodes[0], nodes[1]
	x, y := nodes[1].id, nodes[2].id
	a.put(t, t0.Add(time.Second), "f", "f", 1, 2, 3)
	b.put(t, t0.Add(time.Second), "g", "g", 4)
	syncOnce(t, b.c, a.c) // chunk 4: known on A, not held
	if _, err := a.c.StoreReceived(ctx, []ChunkRef{ref(5)}); err != nil {
		t.Fatal(err) // chunk 5: held, unreferenced
	}
	if err := a.c.AddReplicas(ctx, x, []store.ID{cid(1), cid(2), cid(4), cid(5), cid(77)}); err != nil {
		t.Fatal(err)
	}
	if err := a.c.AddReplicas(ctx, y, []store.ID{cid(1), cid(4)}); err != nil {
		t.Fatal(err)
	}
	if err := a.c.AddReplicas(ctx, y, []store.ID{cid(1)}); err != nil {
		t.Fatalf("confirming again: %v", err)
	}
	for i, want := range map[int][]string{1: sortedStrings(x, y), 2: {x}, 3: nil, 4: sortedStrings(x, y), 5: {x}, 77: nil} {
		got, err := a.c.Holders(ctx, cid(i))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Holders(%d) = %v, %v; want %v", i, got, err, want)
		}
	}
	type seen struct {
		i      int
		held   bool
		peers  string
		plain  int64
		stored int64
	}
	var got []seen
	err := a.c.EachReferenced(ctx, func(cc ChunkCopies) error {
		i := slices.IndexFunc([]int{1, 2, 3, 4, 5}, func(i int) bool { return cid(i) == cc.ID })
		if i < 0 {
			return fmt.Errorf("unexpected chunk %s", cc.ID)
		}
		sort.Strings(cc.Peers)
		got = append(got, seen{i + 1, cc.Held, strings.Join(cc.Peers, ","), cc.Plain, cc.Stored})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	xy := strings.Join(sortedStrings(x, y), ",")
	want := []seen{
		{1, true, xy, ref(1).Plain, ref(1).Stored},
		{2, true, x, ref(2).Plain, ref(2).Stored},
		{3, true, "", ref(3).Plain, ref(3).Stored},
		{4, false, xy, ref(4).Plain, ref(4).Stored},
	}
	if !slices.Equal(got, want) {
		t.Errorf("EachReferenced =\n%+v\nwant\n%+v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := a.c.EachReferenced(ctx, func(ChunkCopies) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("EachReferenced did not stop on the callback's error: %v after %d", err, n)
	}

	if err := a.c.DropReplicas(ctx, x, []store.ID{cid(1), cid(3), cid(77)}); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.c.Holders(ctx, cid(1)); !slices.Equal(h, []string{y}) {
		t.Errorf("Holders(1) after DropReplicas = %v", h)
	}
	if h, _ := a.c.Holders(ctx, cid(2)); !slices.Equal(h, []string{x}) {
		t.Errorf("Holders(2) after dropping another chunk = %v", h)
	}

	// A collected chunk takes its replica rows with it.
	setConfig(t, a.c, "keep-versions", "1")
	a.put(t, t0.Add(time.Hour), "f", "f2", 9)
	a.at(t0.Add(48 * time.Hour))
	err = a.c.Tx(ctx, func(tx *Tx) error {
		g, err := tx.Garbage(ctx, SweepRule{Before: t0.Add(24 * time.Hour)}, 100)
		if err != nil {
			return err
		}
		_, err = tx.DeleteGarbage(ctx, g)
		return err
	})
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if k, _ := a.c.Known(ctx, []store.ID{cid(2)}); len(k) != 0 {
		t.Fatalf("chunk 2 not collected")
	}
	if n := rawCount(t, rawDB(t, a.path), `SELECT count(*) FROM replicas r WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = r.chunk_id)`); n != 0 {
		t.Errorf("%d replica rows outlive their chunk", n)
	}
	checkSyncInvariants(t, nodes...)
}

// EachReferenced pages through more than one page of chunks.
func TestEachReferencedPages(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{Origin: store.PeerID{1}.String()})
	is := make([]int, 2500)
	for i := range is {
		is[i] = i
	}
	add(t, c, nv("big", "big", is...))
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("small", "small", 0))
	var got []store.ID
	if err := c.EachReferenced(ctx, func(cc ChunkCopies) error { got = append(got, cc.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(is) {
		t.Fatalf("EachReferenced gave %d chunks, want %d", len(got), len(is))
	}
	for i, id := range got {
		if id != cid(i) {
			t.Fatalf("chunk %d = %s, want %s (id order)", i, id, cid(i))
		}
	}
}

// A catalog made before the peers migration gets version identities from
// its change log and one-origin version vectors.
func TestMigrationPeers(t *testing.T) {
	ctx := context.Background()
	origin := store.PeerID{7}.String()
	path := filepath.Join(t.TempDir(), "catalog.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations", len(ms))
	}
	db := rawDB(t, path)
	if _, err := db.Exec(`PRAGMA journal_mode = WAL`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ms[0]); err != nil {
		t.Fatalf("migration 1: %v", err)
	}
	ns := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	stmts := []string{
		`INSERT INTO meta(key, value) VALUES ('format', '1'), ('node_id', '` + origin + `')`,
		// a: put, put, delete (head 3, a tombstone)
		// b: put
		// c: four puts, the first three pruned
		// d: put, restore of 1
		`INSERT INTO objects(id, name, head, live) VALUES (1, 'a', 3, 0), (2, 'b', 1, 1), (3, 'c', 4, 1), (4, 'd', 2, 1)`,
		fmt.Sprintf(`INSERT INTO changes(seq, origin, origin_seq, at, op, name, version, detail) VALUES
			(1, '%[1]s', 1, %[2]d, 'put', 'a', 1, ''),
			(2, '%[1]s', 2, %[2]d, 'put', 'b', 1, ''),
			(3, '%[1]s', 3, %[2]d, 'put', 'a', 2, ''),
			(4, '%[1]s', 4, %[2]d, 'config', '', 0, 'keep-versions=1'),
			(5, '%[1]s', 5, %[2]d, 'delete', 'a', 3, ''),
			(6, '%[1]s', 6, %[2]d, 'put', 'c', 1, ''),
			(7, '%[1]s', 7, %[2]d, 'put', 'c', 2, ''),
			(8, '%[1]s', 8, %[2]d, 'put', 'c', 3, ''),
			(9, '%[1]s', 9, %[2]d, 'gc', '', 0, '{}'),
			(10, '%[1]s', 10, %[2]d, 'put', 'c', 4, ''),
			(11, '%[1]s', 11, %[2]d, 'put', 'd', 1, ''),
			(12, '%[1]s', 12, %[2]d, 'restore', 'd', 2, '{"from":1}')`, origin, ns(0)),
		fmt.Sprintf(`INSERT INTO versions(id, object_id, num, deleted, size, mode, mtime, content_type, sha256, created, origin, restored_from) VALUES
			(1, 1, 1, 0, 1001, 420, %[2]d, 'text/plain', x'01', %[2]d, '%[1]s', NULL),
			(2, 1, 2, 0, 1002, 420, %[2]d, '', x'02', %[3]d, '%[1]s', NULL),
			(3, 1, 3, 1, 0, 0, 0, '', NULL, %[4]d, '%[1]s', NULL),
			(4, 2, 1, 0, 1003, 420, %[2]d, '', x'03', %[2]d, '%[1]s', NULL),
			(5, 3, 4, 0, 1004, 420, %[2]d, '', x'04', %[4]d, '%[1]s', NULL),
			(6, 4, 1, 0, 1001, 420, %[2]d, '', x'05', %[2]d, '%[1]s', NULL),
			(7, 4, 2, 0, 1001, 420, %[2]d, '', x'05', %[4]d, '%[1]s', 1)`, origin, ns(0), ns(time.Second), ns(2*time.Second)),
		`INSERT INTO chunks(id, hash, refs, plain_size, stored_size) VALUES (?, ?, 3, 1001, 501), (?, ?, 1, 1002, 502), (?, ?, 1, 1003, 503), (?, ?, 1, 1004, 504)`,
		`INSERT INTO version_chunks(version_id, idx, chunk_id) VALUES (1, 0, 1), (2, 0, 2), (4, 0, 3), (5, 0, 4), (6, 0, 1), (7, 0, 1)`,
		`PRAGMA user_version = 1`,
	}
	for i, s := range stmts {
		var err error
		if strings.HasPrefix(s, "INSERT INTO chunks") {
			c1, c2, c3, c4 := cid(1), cid(2), cid(3), cid(4)
			_, err = db.Exec(s, 1, c1[:], 2, c2[:], 3, c3[:], 4, c4[:])
		} else {
			_, err = db.Exec(s)
		}
		if err != nil {
			t.Fatalf("statement %d: %v", i, err)
		}
	}
	// The digest column holds 32 bytes in real catalogs.
	if _, err := db.Exec(`UPDATE versions SET sha256 = zeroblob(32) WHERE sha256 IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	clk := newClock()
	clk.Advance(time.Hour)
	c, err := Open(ctx, path, Options{Origin: origin, Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	db = rawDB(t, path)
	if v := rawCount(t, db, `PRAGMA user_version`); v != int64(len(ms)) {
		t.Fatalf("user_version = %d, want %d", v, len(ms))
	}
	for _, tc := range []struct {
		name string
		num  int64
		seq  int64
		vv   VV
	}{
		{"a", 1, 1, VV{origin: 1}},
		{"a", 2, 3, VV{origin: 2}},
		{"a", 3, 5, VV{origin: 3}},
		{"b", 1, 2, VV{origin: 1}},
		{"c", 4, 10, VV{origin: 4}},
		{"d", 1, 11, VV{origin: 1}},
		{"d", 2, 12, VV{origin: 2}},
	} {
		var seq int64
		var vvs string
		err := db.QueryRow(`SELECT v.origin_seq, v.vv FROM versions v JOIN objects o ON o.id = v.object_id
			WHERE o.name = ? AND v.num = ?`, tc.name, tc.num).Scan(&seq, &vvs)
		if err != nil {
			t.Fatalf("%s@%d: %v", tc.name, tc.num, err)
		}
		v, err := ParseVV(vvs)
		if err != nil || seq != tc.seq || v.Compare(tc.vv) != Equal || len(v) != 1 {
			t.Errorf("%s@%d: origin_seq %d, vv %s (%v); want %d, %s", tc.name, tc.num, seq, vvs, err, tc.seq, tc.vv)
		}
	}
	for name, want := range map[string]VV{"a": {origin: 3}, "b": {origin: 1}, "c": {origin: 4}, "d": {origin: 2}} {
		var vvs string
		if err := db.QueryRow(`SELECT vv FROM objects WHERE name = ?`, name).Scan(&vvs); err != nil {
			t.Fatal(err)
		}
		if v, err := ParseVV(vvs); err != nil || v.Compare(want) != Equal {
			t.Errorf("objects.vv of %s = %s, %v; want %s (its head's)", name, vvs, err, want)
		}
	}
	if n := rawCount(t, db, `SELECT count(*) FROM chunks WHERE held = 1`); n != 4 {
		t.Errorf("%d chunks held after the migration, want all 4", n)
	}

	// The migrated catalog replicates: a new node pulls it and converges.
	old := &syncNode{c: c, path: path, clk: clk, id: origin}
	peer := newSyncNode(t, 8)
	if err := peer.c.AddPeer(ctx, Peer{ID: origin}); err != nil {
		t.Fatal(err)
	}
	if err := old.c.AddPeer(ctx, Peer{ID: peer.id}); err != nil {
		t.Fatal(err)
	}
	aps := syncOnce(t, old.c, peer.c)
	added, _, conf := countApplied(aps)
	// a@1, a@2, a@3 (a tombstone), b@1, c@4, d@1, d@2; c@1..3 are gone.
	if len(aps) != 10 || added != 7 || conf != 0 {
		t.Errorf("pulled %d changes, %d added, %d conflicts: %+v", len(aps), added, conf, aps)
	}
	// A local write after the migration continues the object's clock and
	// the origin's sequence.
	old.put(t, clk.Now().Add(time.Minute), "b", "b2", 3)
	var seq int64
	var vvs string
	if err := db.QueryRow(`SELECT v.origin_seq, v.vv FROM versions v JOIN objects o ON o.id = v.object_id
		WHERE o.name = 'b' AND v.num = 2`).Scan(&seq, &vvs); err != nil {
		t.Fatal(err)
	}
	if v, _ := ParseVV(vvs); seq <= 12 || v.Compare(VV{origin: 2}) != Equal {
		t.Errorf("new version of b: origin_seq %d, vv %s; want > 12 and {origin: 2}", seq, vvs)
	}
	syncOnce(t, old.c, peer.c)
	if h := mustHead(t, peer, "b"); h.Num != 2 || h.SHA256 != digest("b2") {
		t.Errorf("peer's b = %+v, want the post-migration write as a fast-forward", h)
	}
	gossip(t, old, peer)
	converged(t, old, peer)
	checkSyncInvariants(t, old, peer)
}
