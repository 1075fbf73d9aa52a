package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// syncNode is a catalog with its own controlled clock, as one node of a
// cluster sees it.
type syncNode struct {
	c    *Catalog
	path string
	clk  *clock
	id   string
}

func newSyncNode(t testing.TB, n byte) *syncNode {
	t.Helper()
	clk := newClock()
	id := store.PeerID{n}.String()
	c, path := newCatalog(t, Options{Origin: id, Now: clk.Now})
	return &syncNode{c: c, path: path, clk: clk, id: id}
}

// newCluster makes n nodes (IDs PeerID{1}, PeerID{2}, ...) that have all
// pinned each other.
func newCluster(t testing.TB, n int) []*syncNode {
	t.Helper()
	nodes := make([]*syncNode, n)
	for i := range nodes {
		nodes[i] = newSyncNode(t, byte(i+1))
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.c.AddPeer(context.Background(), Peer{ID: b.id, Name: "node-" + b.id[:4]}); err != nil {
					t.Fatalf("AddPeer: %v", err)
				}
			}
		}
	}
	return nodes
}

// at sets the node's clock.
func (n *syncNode) at(when time.Time) { n.clk.Advance(when.Sub(n.clk.Now())) }

// put writes a version at the given time.
func (n *syncNode) put(t testing.TB, when time.Time, name, label string, chunks ...int) Version {
	t.Helper()
	n.at(when)
	v := nv(name, label, chunks...)
	v.ContentType = "type/" + label
	v.MTime = when.Add(-time.Hour)
	return add(t, n.c, v).Version
}

const (
	syncPage      = 3 // changes per ExportChanges call: small, to exercise paging
	syncChunkPage = 2 // chunk references per IdentityChunks call
)

// syncOnce pulls every change from has not sent to yet, as a node's puller
// does: pages of ExportChanges after the cursor kept in to's peer row, each
// version's chunk list from IdentityChunks, and ApplyRemote with the new
// cursor in one transaction per page. It returns what ApplyRemote reported.
func syncOnce(t testing.TB, from, to *Catalog) []Applied {
	t.Helper()
	ctx := context.Background()
	p, err := to.FindPeer(ctx, from.Origin())
	if err != nil {
		t.Fatalf("syncOnce: %s has not pinned %s: %v", to.Origin()[:4], from.Origin()[:4], err)
	}
	cursor, at := p.PullSeq, p.Pull
	var out []Applied
	for {
		page, last, lastAt, err := from.ExportChanges(ctx, cursor, at, syncPage, to.Origin())
		if err != nil {
			t.Fatalf("ExportChanges(after %d): %v", cursor, err)
		}
		if last < cursor {
			t.Fatalf("ExportChanges(after %d) moved the cursor back to %d", cursor, last)
		}
		if last == cursor {
			if len(page) != 0 {
				t.Fatalf("ExportChanges(after %d) returned %d changes without moving the cursor", cursor, len(page))
			}
			break
		}
		type item struct {
			rv     RemoteVersion
			chunks []ChunkRef
		}
		var items []item
		for _, e := range page {
			if e.Seq <= cursor || e.Seq > last {
				t.Fatalf("ExportChanges(after %d) = change %d outside (%d, %d]", cursor, e.Seq, cursor, last)
			}
			if e.Version.Origin == to.Origin() {
				t.Fatalf("ExportChanges sent the asker its own change %+v", e.Version)
			}
			// Through JSON, as the version travels between nodes.
			rv := jsonRoundTrip(t, e.Version)
			var chunks []ChunkRef
			if !rv.Gone && !rv.Deleted {
				chunks, err = fetchChunks(ctx, from, rv)
				if errors.Is(err, ErrNotFound) {
					rv.Gone = true // pruned since the export
				} else if err != nil {
					t.Fatalf("IdentityChunks(%s/%d): %v", rv.Origin[:4], rv.OriginSeq, err)
				}
			}
			items = append(items, item{rv, chunks})
		}
		err = to.Tx(ctx, func(tx *Tx) error {
			for _, it := range items {
				a, err := tx.applyRV(ctx, it.rv, it.chunks)
				if err != nil {
					return fmt.Errorf("ApplyRemote(%s/%d %s %s): %w", it.rv.Origin[:4], it.rv.OriginSeq, it.rv.Op, it.rv.Name, err)
				}
				out = append(out, a)
			}
			return tx.SetPull(ctx, from.Origin(), last, lastAt)
		})
		if err != nil {
			t.Fatalf("apply page: %v", err)
		}
		cursor, at = last, lastAt
	}
	p, err = to.FindPeer(ctx, from.Origin())
	if err != nil || p.PullSeq != cursor {
		t.Fatalf("pull cursor after sync = %d, %v; want %d", p.PullSeq, err, cursor)
	}
	return out
}

func jsonRoundTrip(t testing.TB, rv RemoteVersion) RemoteVersion {
	t.Helper()
	b, err := json.Marshal(rv)
	if err != nil {
		t.Fatalf("marshal %+v: %v", rv, err)
	}
	var out RemoteVersion
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return out
}

// fetchChunks reads a version's whole chunk list a page at a time.
func fetchChunks(ctx context.Context, from *Catalog, rv RemoteVersion) ([]ChunkRef, error) {
	var out []ChunkRef
	for {
		page, err := from.IdentityChunks(ctx, rv.Origin, rv.OriginSeq, int64(len(out)), syncChunkPage)
		if err != nil {
			return nil, err
		}
		if len(page) > syncChunkPage {
			return nil, fmt.Errorf("IdentityChunks returned %d references, limit %d", len(page), syncChunkPage)
		}
		out = append(out, page...)
		if len(page) < syncChunkPage {
			return out, nil
		}
	}
}

// gossip syncs every ordered pair until a round moves nothing.
func gossip(t testing.TB, nodes ...*syncNode) {
	t.Helper()
	for range 10 {
		moved := 0
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b {
					moved += len(syncOnce(t, a.c, b.c))
				}
			}
		}
		if moved == 0 {
			return
		}
	}
	t.Fatalf("gossip: still moving changes after 10 rounds")
}

// headInfo is what must agree between nodes about an object's newest
// version (version numbers are local and may differ).
type headInfo struct {
	Deleted     bool
	Size        int64
	Mode        uint32
	MTime       int64
	ContentType string
	SHA256      Digest
	Created     int64
	Origin      string
	Chunks      string
}

func (h headInfo) String() string {
	by := h.Origin
	if len(by) > 4 {
		by = by[:4]
	}
	if by == "" {
		by = "(derived)"
	}
	if h.Deleted {
		return fmt.Sprintf("tombstone by %s", by)
	}
	return fmt.Sprintf("%s by %s (%d bytes, chunks %s)", h.ContentType, by, h.Size, h.Chunks)
}

func chunkList(t testing.TB, c *Catalog, v Version) string {
	t.Helper()
	var parts []string
	err := c.Chunks(context.Background(), v, 0, func(idx int64, r ChunkRef) error {
		parts = append(parts, fmt.Sprintf("%s:%d:%d", r.ID.String()[:6], r.Plain, r.Stored))
		return nil
	})
	if err != nil {
		t.Fatalf("Chunks: %v", err)
	}
	return strings.Join(parts, ",")
}

func infoOf(t testing.TB, c *Catalog, v Version) headInfo {
	return headInfo{Deleted: v.Deleted, Size: v.Size, Mode: v.Mode, MTime: v.MTime.UnixNano(),
		ContentType: v.ContentType, SHA256: v.SHA256, Created: v.Created.UnixNano(), Origin: v.Origin,
		Chunks: chunkList(t, c, v)}
}

// heads returns the newest version of every live object: what a user sees.
// Deleted objects are left out: a conflict copy is retired (deleted) on the
// nodes that showed it once a later write resolves the conflict, while a
// node that received the resolving write first never made the copy.
func heads(t testing.TB, c *Catalog) map[string]headInfo {
	t.Helper()
	out := make(map[string]headInfo)
	err := c.List(context.Background(), root, ListOptions{Recursive: true}, func(e Entry) error {
		out[e.Name] = infoOf(t, c, e.Head)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return out
}

func describe(h map[string]headInfo) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		lines = append(lines, fmt.Sprintf("\t%s: %s", k, h[k]))
	}
	return strings.Join(lines, "\n")
}

// converged reports whether every node has the same heads, and says how
// they differ if not.
func converged(t testing.TB, nodes ...*syncNode) bool {
	t.Helper()
	first := heads(t, nodes[0].c)
	ok := true
	for _, n := range nodes[1:] {
		h := heads(t, n.c)
		if !maps.Equal(first, h) {
			ok = false
			t.Errorf("nodes did not converge:\nnode %s:\n%s\nnode %s:\n%s", nodes[0].id[:4], describe(first), n.id[:4], describe(h))
		}
	}
	return ok
}

// checkSyncInvariants checks what must hold on every node whatever was
// synced: reference counts match the chunk lists, each object's clock
// covers every version it has, every version's identity is a change in
// the log, and head and live agree with the versions.
func checkSyncInvariants(t testing.TB, nodes ...*syncNode) {
	t.Helper()
	ctx := context.Background()
	for _, n := range nodes {
		drift, err := n.c.RefDrift(ctx)
		if err != nil {
			t.Fatalf("RefDrift: %v", err)
		}
		if len(drift) != 0 {
			t.Errorf("node %s: reference counts drifted: %+v", n.id[:4], drift)
		}
		if bad, err := n.c.QuickCheck(ctx); err != nil || len(bad) != 0 {
			t.Errorf("node %s: quick_check: %v %v", n.id[:4], bad, err)
		}
		db := rawDB(t, n.path)
		rows, err := db.Query(`SELECT o.name, o.vv, v.num, v.vv, v.origin, v.origin_seq, v.deleted,
			(SELECT count(*) FROM version_chunks vc WHERE vc.version_id = v.id)
			FROM objects o JOIN versions v ON v.object_id = o.id`)
		if err != nil {
			t.Fatalf("read versions: %v", err)
		}
		type row struct {
			name, ovv, vvv, origin string
			num, oseq, nchunks     int64
			deleted                bool
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.name, &r.ovv, &r.num, &r.vvv, &r.origin, &r.oseq, &r.deleted, &r.nchunks); err != nil {
				t.Fatalf("scan: %v", err)
			}
			all = append(all, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		for _, r := range all {
			name, ovv, vvv, origin, num, oseq, nchunks, deleted := r.name, r.ovv, r.vvv, r.origin, r.num, r.oseq, r.nchunks, r.deleted
			oc, err1 := ParseVV(ovv)
			vc, err2 := ParseVV(vvv)
			if err1 != nil || err2 != nil {
				t.Errorf("node %s: %s@%d: unreadable clocks %q / %q", n.id[:4], name, num, ovv, vvv)
				continue
			}
			if origin == "" {
				// A retired conflict copy: a deletion every node derives
				// alike, with no identity of its own.
				if !deleted || nchunks != 0 || oseq != 0 {
					t.Errorf("node %s: %s@%d has no origin but is not a retirement", n.id[:4], name, num)
				}
				continue
			}
			if o := vc.Compare(oc); o != Before && o != Equal {
				t.Errorf("node %s: %s@%d has vector %s, not covered by the object's %s", n.id[:4], name, num, vvv, ovv)
			}
			if vc[origin] < 1 {
				t.Errorf("node %s: %s@%d by %s has vector %s without its own write", n.id[:4], name, num, origin[:4], vvv)
			}
			if deleted && nchunks != 0 {
				t.Errorf("node %s: tombstone %s@%d has %d chunks", n.id[:4], name, num, nchunks)
			}
			if c := rawCount(t, db, `SELECT count(*) FROM changes WHERE origin = ? AND origin_seq = ?`, origin, oseq); c != 1 {
				t.Errorf("node %s: %s@%d has identity %s/%d, found %d times in the log", n.id[:4], name, num, origin[:4], oseq, c)
			}
		}
		if c := rawCount(t, db, `SELECT count(*) FROM objects o WHERE head = 0 OR NOT EXISTS
			(SELECT 1 FROM versions v WHERE v.object_id = o.id AND v.num = o.head AND v.deleted = 1 - o.live)`); c != 0 {
			t.Errorf("node %s: %d objects whose head or live flag disagrees with their versions", n.id[:4], c)
		}
	}
}

func mustHead(t testing.TB, n *syncNode, name string) Version {
	t.Helper()
	v, err := n.c.Head(context.Background(), names.Must(name))
	if err != nil {
		t.Fatalf("node %s: Head(%s): %v", n.id[:4], name, err)
	}
	return v
}

func objectClock(t testing.TB, n *syncNode, name string) VV {
	t.Helper()
	var s string
	if err := rawDB(t, n.path).QueryRow(`SELECT vv FROM objects WHERE name = ?`, name).Scan(&s); err != nil {
		t.Fatalf("object clock of %s: %v", name, err)
	}
	v, err := ParseVV(s)
	if err != nil {
		t.Fatalf("object clock of %s: %v", name, err)
	}
	return v
}

func countApplied(aps []Applied) (added, dup, conflicts int) {
	for _, a := range aps {
		if a.Added {
			added++
		}
		if a.Duplicate {
			dup++
		}
		if a.Conflict != "" {
			conflicts++
		}
	}
	return
}

// (a) A put on one node reaches another with its metadata and chunk list;
// the chunks are known there but not held; re-syncing applies nothing new.
func TestSyncPutReachesPeer(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	va := a.put(t, t0.Add(time.Second), "docs/a.txt", "one", 1, 2, 1, 3, 4) // chunk 1 twice
	ve := a.put(t, t0.Add(2*time.Second), "empty", "nothing")               // no chunks

	aps := syncOnce(t, a.c, b.c)
	if added, dup, conf := countApplied(aps); added != 2 || dup != 0 || conf != 0 || len(aps) != 2 {
		t.Fatalf("first sync applied %+v", aps)
	}
	for i, want := range []string{"docs/a.txt", "empty"} {
		if aps[i].Name != want {
			t.Errorf("applied[%d].Name = %q, want %q", i, aps[i].Name, want)
		}
	}
	for _, v := range []Version{va, ve} {
		hb := mustHead(t, b, v.Name)
		if got, want := infoOf(t, b.c, hb), infoOf(t, a.c, mustHead(t, a, v.Name)); got != want {
			t.Errorf("%s on B = %+v, want %+v", v.Name, got, want)
		}
		if hb.Num != 1 || hb.Origin != a.id || hb.Chunks != v.Chunks || hb.SHA256 != v.SHA256 || hb.Size != v.Size {
			t.Errorf("%s on B = %+v, want A's %+v", v.Name, hb, v)
		}
	}
	if got, want := chunkIDs(t, b.c, mustHead(t, b, "docs/a.txt")), []store.ID{cid(1), cid(2), cid(1), cid(3), cid(4)}; !slices.Equal(got, want) {
		t.Errorf("chunks on B = %v, want %v", shorts(got), shorts(want))
	}
	for i, wantRefs := range map[int]int64{1: 2, 2: 1, 3: 1, 4: 1} {
		st, err := b.c.Lookup(ctx, cid(i))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Known || st.Held || st.Refs != wantRefs || st.Stored != ref(i).Stored {
			t.Errorf("chunk %d on B = %+v, want known, not held, refs %d, stored %d", i, st, wantRefs, ref(i).Stored)
		}
		st, _ = a.c.Lookup(ctx, cid(i))
		if !st.Held || st.Refs != wantRefs {
			t.Errorf("chunk %d on A = %+v, want held with refs %d", i, st, wantRefs)
		}
	}
	all := []store.ID{cid(1), cid(2), cid(3), cid(4)}
	if held, err := b.c.HeldAmong(ctx, all); err != nil || len(held) != 0 {
		t.Errorf("B HeldAmong = %v, %v; want none", held, err)
	}
	if known, err := b.c.Known(ctx, all); err != nil || len(known) != 4 {
		t.Errorf("B Known = %d, %v; want 4", len(known), err)
	}

	// B logged the changes under A's identity.
	chs, err := b.c.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var applied []Change
	for _, ch := range chs {
		if ch.Origin == a.id {
			applied = append(applied, ch)
		}
	}
	achs, _ := a.c.Changes(ctx, 0, 100)
	var aputs []Change
	for _, ch := range achs {
		if ch.Op == "put" {
			aputs = append(aputs, ch)
		}
	}
	if len(applied) != 2 || len(aputs) != 2 {
		t.Fatalf("B logged %d changes by A, A has %d puts", len(applied), len(aputs))
	}
	for i := range applied {
		if applied[i].OriginSeq != aputs[i].OriginSeq || applied[i].Op != "put" || applied[i].Name != aputs[i].Name || applied[i].Version != 1 {
			t.Errorf("B's log entry %+v for A's %+v", applied[i], aputs[i])
		}
	}

	// Nothing new: a second sync applies nothing, either way.
	if aps := syncOnce(t, a.c, b.c); len(aps) != 0 {
		t.Errorf("second sync A->B applied %+v", aps)
	}
	if aps := syncOnce(t, b.c, a.c); len(aps) != 0 {
		t.Errorf("sync B->A sent A's own changes back: %+v", aps)
	}
	// The cursor moved past B's log all the same.
	if p, _ := a.c.FindPeer(ctx, b.id); p.PullSeq == 0 {
		t.Errorf("A's cursor into B's log did not move past A's own changes")
	}

	// Replayed from the start, every change is a duplicate and nothing changes.
	before := heads(t, b.c)
	seqBefore := lastChangeSeq(t, b.c)
	if err := b.c.Tx(ctx, func(tx *Tx) error { return tx.SetPull(ctx, a.id, 0, Identity{}) }); err != nil {
		t.Fatal(err)
	}
	aps = syncOnce(t, a.c, b.c)
	if added, dup, _ := countApplied(aps); len(aps) != 2 || dup != 2 || added != 0 {
		t.Errorf("replay applied %+v, want 2 duplicates", aps)
	}
	if after := heads(t, b.c); !maps.Equal(before, after) {
		t.Errorf("replay changed B:\n%s\nthen\n%s", describe(before), describe(after))
	}
	if s := lastChangeSeq(t, b.c); s != seqBefore {
		t.Errorf("replay logged changes: last seq %d, was %d", s, seqBefore)
	}
	if vs, _ := b.c.Versions(ctx, names.Must("docs/a.txt")); len(vs) != 1 {
		t.Errorf("replay added versions: %d", len(vs))
	}
	if st, _ := b.c.Lookup(ctx, cid(1)); st.Refs != 2 {
		t.Errorf("replay changed refs of chunk 1 to %d", st.Refs)
	}
	checkSyncInvariants(t, a, b)
}

// (b) A version written after seeing another follows it: no conflict.
func TestSyncFastForward(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	const name = "notes/todo.md"
	a.put(t, t0.Add(time.Second), name, "v1", 1, 2)
	syncOnce(t, a.c, b.c)
	v2 := b.put(t, t0.Add(2*time.Second), name, "v2", 2, 3)
	aps := syncOnce(t, b.c, a.c)
	if len(aps) != 1 || !aps[0].Added || aps[0].Conflict != "" || aps[0].Name != name {
		t.Fatalf("fast-forward applied %+v", aps)
	}
	h := mustHead(t, a, name)
	if h.SHA256 != v2.SHA256 || h.Origin != b.id || h.Num != 2 {
		t.Errorf("A's head = %+v, want B's v2", h)
	}
	if want := (VV{a.id: 1, b.id: 1}); objectClock(t, a, name).Compare(want) != Equal {
		t.Errorf("A's clock = %v, want %v", objectClock(t, a, name), want)
	}
	if aps := syncOnce(t, a.c, b.c); len(aps) != 0 {
		t.Errorf("sync back to B applied %+v", aps)
	}
	for _, n := range nodes {
		for _, o := range nodes {
			if _, err := n.c.Head(ctx, names.Must(conflictName(name, o.id))); !errors.Is(err, ErrNotFound) {
				t.Errorf("node %s has a conflict copy %s: %v", n.id[:4], conflictName(name, o.id), err)
			}
		}
	}
	converged(t, a, b)

	// A delete that follows, then a restore that follows it, also move
	// straight through.
	a.at(t0.Add(3 * time.Second))
	if _, err := del(a.c, name); err != nil {
		t.Fatal(err)
	}
	syncOnce(t, a.c, b.c)
	if h := mustHead(t, b, name); !h.Deleted || h.Origin != a.id {
		t.Errorf("B's head after A's delete = %+v, want A's tombstone", h)
	}
	var live int
	b.c.List(ctx, root, ListOptions{Recursive: true}, func(Entry) error { live++; return nil })
	if live != 0 {
		t.Errorf("B lists %d live objects after the delete", live)
	}
	b.at(t0.Add(4 * time.Second))
	if _, added, err := restore(b.c, name, 0); err != nil || !added {
		t.Fatalf("restore on B: %v, %v", added, err)
	}
	syncOnce(t, b.c, a.c)
	if h := mustHead(t, a, name); h.Deleted || h.SHA256 != v2.SHA256 || h.Origin != b.id {
		t.Errorf("A's head after B's restore = %+v, want v2's content by B", h)
	}
	gossip(t, a, b)
	if converged(t, a, b) {
		if h := heads(t, a.c); len(h) != 1 {
			t.Errorf("objects after fast-forwards:\n%s", describe(h))
		}
	}
	checkSyncInvariants(t, a, b)
}

// (c) Two writes made without seeing each other: on every node, whatever
// the order of syncs, the earlier write keeps the name and the later one
// is in the conflict copy named after its node.
func TestSyncConcurrentWrites(t *testing.T) {
	const name = "photos/cat.jpg"
	for _, timing := range []struct {
		name   string
		ta, tb time.Duration
		later  int // index of the node whose write is later
	}{
		{"B later", 1 * time.Second, 2 * time.Second, 1},
		{"A later", 2 * time.Second, 1 * time.Second, 0},
		{"same time, larger ID later", time.Second, time.Second, 1},
	} {
		for _, order := range []string{"A->B first", "B->A first"} {
			t.Run(timing.name+", "+order, func(t *testing.T) {
				nodes := newCluster(t, 2)
				a, b := nodes[0], nodes[1]
				va := a.put(t, t0.Add(timing.ta), name, "by-a", 1, 2)
				vb := b.put(t, t0.Add(timing.tb), name, "by-b", 2, 3, 3)
				var aps []Applied
				if order == "A->B first" {
					aps = append(aps, syncOnce(t, a.c, b.c)...)
					aps = append(aps, syncOnce(t, b.c, a.c)...)
				} else {
					aps = append(aps, syncOnce(t, b.c, a.c)...)
					aps = append(aps, syncOnce(t, a.c, b.c)...)
				}
				earlier, later := va, vb
				if timing.later == 0 {
					earlier, later = vb, va
				}
				cn := conflictName(name, later.Origin)
				for _, ap := range aps {
					if ap.Conflict != cn {
						t.Errorf("applied %+v, want conflict %s", ap, cn)
					}
				}
				if len(aps) != 2 {
					t.Errorf("applied %d changes, want 2", len(aps))
				}
				for _, n := range nodes {
					h := mustHead(t, n, name)
					if h.SHA256 != earlier.SHA256 || h.Origin != earlier.Origin {
						t.Errorf("node %s: %s = %s by %s, want the earlier write by %s", n.id[:4], name, h.ContentType, h.Origin[:4], earlier.Origin[:4])
					}
					c := mustHead(t, n, cn)
					if c.SHA256 != later.SHA256 || c.Origin != later.Origin || c.Created.UnixNano() != later.Created.UnixNano() {
						t.Errorf("node %s: %s = %+v, want the later write", n.id[:4], cn, c)
					}
					if got, want := chunkIDs(t, n.c, c), chunkIDs(t, nodes[timing.later].c, later); !slices.Equal(got, want) {
						t.Errorf("node %s: conflict copy chunks %v, want %v", n.id[:4], shorts(got), shorts(want))
					}
					if hs := heads(t, n.c); len(hs) != 2 {
						t.Errorf("node %s has objects:\n%s", n.id[:4], describe(hs))
					}
					if want := (VV{a.id: 1, b.id: 1}); objectClock(t, n, name).Compare(want) != Equal {
						t.Errorf("node %s: clock of %s = %v, want %v", n.id[:4], name, objectClock(t, n, name), want)
					}
				}
				converged(t, a, b)
				gossip(t, a, b)
				converged(t, a, b)

				// A write after the merge follows both and moves straight through.
				after := b.put(t, t0.Add(time.Minute), name, "merged", 4)
				gossip(t, a, b)
				if h := mustHead(t, a, name); h.SHA256 != after.SHA256 {
					t.Errorf("write after the conflict did not reach A as the head: %+v", h)
				}
				converged(t, a, b)
				checkSyncInvariants(t, a, b)
			})
		}
	}
}

// (c) Three nodes: C receives both concurrent writes by different paths and
// ends like the writers.
func TestSyncConcurrentThreeNodes(t *testing.T) {
	const name = "shared/plan.txt"
	paths := map[string]func(t *testing.T, a, b, c *syncNode){
		"C pulls A then B": func(t *testing.T, a, b, c *syncNode) {
			syncOnce(t, a.c, c.c)
			syncOnce(t, b.c, c.c)
		},
		"C pulls B then A": func(t *testing.T, a, b, c *syncNode) {
			syncOnce(t, b.c, c.c)
			syncOnce(t, a.c, c.c)
		},
		"A and B merge, C pulls A only": func(t *testing.T, a, b, c *syncNode) {
			syncOnce(t, a.c, b.c)
			syncOnce(t, b.c, a.c)
			syncOnce(t, a.c, c.c)
		},
		"A and B merge, C pulls B only": func(t *testing.T, a, b, c *syncNode) {
			syncOnce(t, b.c, a.c)
			syncOnce(t, a.c, b.c)
			syncOnce(t, b.c, c.c)
		},
		"chain A->B->C": func(t *testing.T, a, b, c *syncNode) {
			syncOnce(t, a.c, b.c)
			syncOnce(t, b.c, c.c)
		},
		"chain B->A->C": func(t *testing.T, a, b, c *syncNode) {
			syncOnce(t, b.c, a.c)
			syncOnce(t, a.c, c.c)
		},
	}
	for _, pname := range slices.Sorted(maps.Keys(paths)) {
		t.Run(pname, func(t *testing.T) {
			nodes := newCluster(t, 3)
			a, b, c := nodes[0], nodes[1], nodes[2]
			va := a.put(t, t0.Add(time.Second), name, "by-a", 1)
			vb := b.put(t, t0.Add(2*time.Second), name, "by-b", 2)
			paths[pname](t, a, b, c)
			if h := mustHead(t, c, name); h.SHA256 != va.SHA256 {
				t.Errorf("C's %s = %s, want A's earlier write", name, h.ContentType)
			}
			cn := conflictName(name, b.id)
			if h, err := c.c.Head(context.Background(), names.Must(cn)); err != nil || h.SHA256 != vb.SHA256 {
				t.Errorf("C's %s = %+v, %v; want B's later write", cn, h, err)
			}
			if hs := heads(t, c.c); len(hs) != 2 {
				t.Errorf("C has objects:\n%s", describe(hs))
			}
			gossip(t, a, b, c)
			converged(t, a, b, c)
			checkSyncInvariants(t, a, b, c)
		})
	}
}

// A node writes twice while another node writes once in between (by the
// clock). The second write follows the first; only the other node's write
// is concurrent with it. Whatever the sync order, both nodes must end with
// the same heads, and a version superseded on its own node (b1) must never
// become a head anywhere.
func TestSyncConcurrentSuccessiveWrites(t *testing.T) {
	const name = "doc.txt"
	for _, order := range []string{"A->B first", "B->A first"} {
		t.Run(order, func(t *testing.T) {
			nodes := newCluster(t, 2)
			a, b := nodes[0], nodes[1]
			b1 := b.put(t, t0.Add(1*time.Second), name, "b1", 1)
			a.put(t, t0.Add(2*time.Second), name, "a1", 2)
			b2 := b.put(t, t0.Add(3*time.Second), name, "b2", 3)
			if order == "A->B first" {
				syncOnce(t, a.c, b.c)
				syncOnce(t, b.c, a.c)
			} else {
				syncOnce(t, b.c, a.c)
				syncOnce(t, a.c, b.c)
			}
			gossip(t, a, b)
			for _, n := range nodes {
				for oname, h := range heads(t, n.c) {
					if h.SHA256 == b1.SHA256 {
						t.Errorf("node %s: %s is b1, which B's own later write b2 superseded (ApplyRemote compared b2's vector "+
							"with the object clock, which includes a1 parked in a conflict copy, instead of with the head's)", n.id[:4], oname)
					}
				}
				found := false
				for _, h := range heads(t, n.c) {
					found = found || h.SHA256 == b2.SHA256
				}
				if !found {
					t.Errorf("node %s: b2 is not the head of any object", n.id[:4])
				}
			}
			converged(t, a, b)
			checkSyncInvariants(t, a, b)
		})
	}
}

// (d) A delete concurrent with a write loses: the write is the head on both
// nodes, whatever the clocks and the sync order, and no conflict copy is made.
func TestSyncDeleteConcurrentWithWrite(t *testing.T) {
	const name = "a/b/report.pdf"
	for _, delLater := range []bool{false, true} {
		for _, order := range []string{"A->B first", "B->A first"} {
			t.Run(fmt.Sprintf("delete later %v, %s", delLater, order), func(t *testing.T) {
				ctx := context.Background()
				nodes := newCluster(t, 2)
				a, b := nodes[0], nodes[1]
				a.put(t, t0.Add(time.Second), name, "v1", 1, 2)
				syncOnce(t, a.c, b.c)
				tdel, tput := t0.Add(2*time.Second), t0.Add(3*time.Second)
				if delLater {
					tdel, tput = tput, tdel
				}
				a.at(tdel)
				if _, err := del(a.c, name); err != nil {
					t.Fatal(err)
				}
				v2 := b.put(t, tput, name, "v2", 2, 3)
				var aps []Applied
				if order == "A->B first" {
					aps = append(syncOnce(t, a.c, b.c), syncOnce(t, b.c, a.c)...)
				} else {
					aps = append(syncOnce(t, b.c, a.c), syncOnce(t, a.c, b.c)...)
				}
				for _, ap := range aps {
					if ap.Conflict != "" {
						t.Errorf("applied %+v: a delete made a conflict copy", ap)
					}
				}
				for _, n := range nodes {
					h := mustHead(t, n, name)
					if h.Deleted || h.SHA256 != v2.SHA256 {
						t.Errorf("node %s: head of %s = %+v, want B's write", n.id[:4], name, h)
					}
					if hs := heads(t, n.c); len(hs) != 1 {
						t.Errorf("node %s has objects:\n%s", n.id[:4], describe(hs))
					}
					var live []string
					n.c.Walk(ctx, root, func(v Version) error { live = append(live, v.Name); return nil })
					if !slices.Equal(live, []string{name}) {
						t.Errorf("node %s lists %v", n.id[:4], live)
					}
				}
				converged(t, a, b)
				checkSyncInvariants(t, a, b)
			})
		}
	}
}

// Two concurrent deletes agree; two writes on one side concurrent with a
// delete on the other still end with the newest write on both nodes and
// no conflict copy.
func TestSyncDeleteVariants(t *testing.T) {
	t.Run("two deletes", func(t *testing.T) {
		nodes := newCluster(t, 2)
		a, b := nodes[0], nodes[1]
		a.put(t, t0.Add(time.Second), "f", "v1", 1)
		syncOnce(t, a.c, b.c)
		a.at(t0.Add(2 * time.Second))
		b.at(t0.Add(3 * time.Second))
		if _, err := del(a.c, "f"); err != nil {
			t.Fatal(err)
		}
		if _, err := del(b.c, "f"); err != nil {
			t.Fatal(err)
		}
		gossip(t, a, b)
		for _, n := range nodes {
			if h := mustHead(t, n, "f"); !h.Deleted {
				t.Errorf("node %s: f = %+v, want deleted", n.id[:4], h)
			}
			if hs := heads(t, n.c); len(hs) != 0 {
				t.Errorf("node %s has live objects:\n%s", n.id[:4], describe(hs))
			}
		}
		checkSyncInvariants(t, a, b)
	})
	for _, order := range []string{"A->B first", "B->A first"} {
		t.Run("delete vs two writes, "+order, func(t *testing.T) {
			nodes := newCluster(t, 2)
			a, b := nodes[0], nodes[1]
			a.put(t, t0.Add(time.Second), "f", "v1", 1)
			syncOnce(t, a.c, b.c)
			b.put(t, t0.Add(2*time.Second), "f", "v2", 2)
			a.at(t0.Add(3 * time.Second))
			if _, err := del(a.c, "f"); err != nil {
				t.Fatal(err)
			}
			v3 := b.put(t, t0.Add(4*time.Second), "f", "v3", 3)
			if order == "A->B first" {
				syncOnce(t, a.c, b.c)
				syncOnce(t, b.c, a.c)
			} else {
				syncOnce(t, b.c, a.c)
				syncOnce(t, a.c, b.c)
			}
			gossip(t, a, b)
			for _, n := range nodes {
				if h := mustHead(t, n, "f"); h.Deleted || h.SHA256 != v3.SHA256 {
					t.Errorf("node %s: f = %s, want v3, B's newest write (v2 is in its past, the delete loses)", n.id[:4], infoOf(t, n.c, h))
				}
				if hs := heads(t, n.c); len(hs) != 1 {
					t.Errorf("node %s has objects (a delete must not cause a conflict copy):\n%s", n.id[:4], describe(hs))
				}
			}
			converged(t, a, b)
			checkSyncInvariants(t, a, b)
		})
	}
}

// (e) Versions pruned at the source before the pull travel as gone: they
// are logged, change nothing, and later versions apply normally.
func TestSyncGoneVersions(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	setConfig(t, a.c, "keep-versions", "1")
	a.put(t, t0.Add(1*time.Second), "f", "v1", 1)
	a.put(t, t0.Add(2*time.Second), "f", "v2", 2)
	v3 := a.put(t, t0.Add(3*time.Second), "f", "v3", 3)
	g := a.put(t, t0.Add(4*time.Second), "g", "g1", 4)

	exp, _, _, err := a.c.ExportChanges(ctx, 0, Identity{}, 100, b.id)
	if err != nil {
		t.Fatal(err)
	}
	var gone []int64
	for _, e := range exp {
		if e.Version.Gone {
			gone = append(gone, e.Version.OriginSeq)
			if e.Version.Chunks != 0 || e.Version.VV != nil || e.Version.SHA256 != (Digest{}) {
				t.Errorf("gone version carries content: %+v", e.Version)
			}
			if _, err := a.c.IdentityChunks(ctx, e.Version.Origin, e.Version.OriginSeq, 0, 10); !errors.Is(err, ErrNotFound) {
				t.Errorf("IdentityChunks of a gone version: %v, want ErrNotFound", err)
			}
		}
	}
	if len(exp) != 4 || len(gone) != 2 {
		t.Fatalf("export = %+v, want 4 changes, 2 gone", exp)
	}

	aps := syncOnce(t, a.c, b.c)
	if len(aps) != 4 {
		t.Fatalf("applied %+v", aps)
	}
	for i, ap := range aps {
		wantAdded := i >= 2
		if ap.Added != wantAdded || ap.Duplicate || ap.Conflict != "" {
			t.Errorf("applied[%d] = %+v, want added %v", i, ap, wantAdded)
		}
	}
	vs, err := b.c.Versions(ctx, names.Must("f"))
	if err != nil || len(vs) != 1 || vs[0].SHA256 != v3.SHA256 || vs[0].Num != 1 {
		t.Errorf("B's versions of f = %+v, %v; want v3 only", vs, err)
	}
	if h := mustHead(t, b, "g"); h.SHA256 != g.SHA256 {
		t.Errorf("B's g = %+v", h)
	}
	for _, i := range []int{1, 2} {
		if st, _ := b.c.Lookup(ctx, cid(i)); st.Known {
			t.Errorf("B knows chunk %d of a gone version: %+v", i, st)
		}
	}
	// The gone identities are logged: a replay is all duplicates.
	if err := b.c.Tx(ctx, func(tx *Tx) error { return tx.SetPull(ctx, a.id, 0, Identity{}) }); err != nil {
		t.Fatal(err)
	}
	if aps := syncOnce(t, a.c, b.c); len(aps) != 4 || aps[0].Duplicate != true || aps[3].Duplicate != true {
		t.Errorf("replay applied %+v, want duplicates", aps)
	}
	// Relayed through B, they stay harmless on C.
	syncOnce(t, b.c, c.c)
	if vs, err := c.c.Versions(ctx, names.Must("f")); err != nil || len(vs) != 1 || vs[0].SHA256 != v3.SHA256 {
		t.Errorf("C's versions of f = %+v, %v", vs, err)
	}
	gossip(t, a, b, c)
	converged(t, a, b, c)
	checkSyncInvariants(t, a, b, c)
}

// A version pruned between the export and the chunk fetch: IdentityChunks
// says ErrNotFound, and the version applied as gone does not stop the rest.
func TestSyncPrunedDuringPull(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	setConfig(t, a.c, "keep-versions", "1")
	a.put(t, t0.Add(time.Second), "f", "v1", 1)
	exp, last, _, err := a.c.ExportChanges(ctx, 0, Identity{}, 10, b.id)
	if err != nil || len(exp) != 1 || exp[0].Version.Gone {
		t.Fatalf("export = %+v, %v", exp, err)
	}
	v2 := a.put(t, t0.Add(2*time.Second), "f", "v2", 2) // prunes v1
	rv := exp[0].Version
	if _, err := a.c.IdentityChunks(ctx, rv.Origin, rv.OriginSeq, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("IdentityChunks of a pruned version: %v", err)
	}
	rv.Gone = true
	err = b.c.Tx(ctx, func(tx *Tx) error {
		ap, err := tx.applyRV(ctx, rv, nil)
		if err != nil || ap.Added {
			return fmt.Errorf("apply gone: %+v, %v", ap, err)
		}
		return tx.SetPull(ctx, a.id, last, Identity{})
	})
	if err != nil {
		t.Fatal(err)
	}
	syncOnce(t, a.c, b.c)
	if h := mustHead(t, b, "f"); h.SHA256 != v2.SHA256 {
		t.Errorf("B's f = %+v, want v2", h)
	}
	checkSyncInvariants(t, a, b)
}

// IdentityChunks pages, caps its page at MaxChunkPage, and answers an
// unknown identity with ErrNotFound and a tombstone with no chunks.
func TestIdentityChunks(t *testing.T) {
	ctx := context.Background()
	a := newCluster(t, 1)[0]
	n := MaxChunkPage + 100
	is := make([]int, n)
	for i := range is {
		is[i] = i
	}
	a.put(t, t0.Add(time.Second), "big", "big", is...)
	chs, _ := a.c.Changes(ctx, 0, 100)
	seq := chs[len(chs)-1].OriginSeq
	got, err := a.c.IdentityChunks(ctx, a.id, seq, 0, 2*MaxChunkPage)
	if err != nil || len(got) != MaxChunkPage {
		t.Fatalf("IdentityChunks(limit %d) = %d refs, %v; want %d", 2*MaxChunkPage, len(got), err, MaxChunkPage)
	}
	for i, r := range got {
		if r != ref(i) {
			t.Fatalf("ref %d = %+v, want %+v", i, r, ref(i))
		}
	}
	rest, err := a.c.IdentityChunks(ctx, a.id, seq, MaxChunkPage, 1000)
	if err != nil || len(rest) != 100 || rest[0] != ref(MaxChunkPage) || rest[99] != ref(n-1) {
		t.Fatalf("second page = %d refs, %v", len(rest), err)
	}
	if end, err := a.c.IdentityChunks(ctx, a.id, seq, int64(n), 10); err != nil || len(end) != 0 {
		t.Errorf("page past the end = %v, %v", end, err)
	}
	if _, err := a.c.IdentityChunks(ctx, a.id, seq+100, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown identity: %v, want ErrNotFound", err)
	}
	a.at(t0.Add(2 * time.Second))
	if _, err := del(a.c, "big"); err != nil {
		t.Fatal(err)
	}
	exp, _, _, err := a.c.ExportChanges(ctx, 0, Identity{}, 10, "")
	if err != nil || len(exp) != 2 || !exp[1].Version.Deleted || exp[1].Version.Op != "delete" {
		t.Fatalf("export = %+v, %v", exp, err)
	}
	if refs, err := a.c.IdentityChunks(ctx, a.id, exp[1].Version.OriginSeq, 0, 10); err != nil || len(refs) != 0 {
		t.Errorf("IdentityChunks of a tombstone = %v, %v", refs, err)
	}
}

// ExportChanges pages in log order, leaves out the asker's own changes and
// everything that is not an object change, and moves the cursor past them.
func TestExportChanges(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	v1 := a.put(t, t0.Add(time.Second), "x", "x1", 1)
	setConfig(t, a.c, "keep-versions", "5")
	b.put(t, t0.Add(time.Second), "y", "y1", 2)
	syncOnce(t, b.c, a.c) // A logs B's change
	a.at(t0.Add(3 * time.Second))
	if _, err := del(a.c, "x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := restore(a.c, "x", 1); err != nil {
		t.Fatal(err)
	}
	if err := a.c.RecordGC(ctx, GCRun{Started: t0, Finished: t0}); err != nil {
		t.Fatal(err)
	}

	// Everything, for a third party.
	all, last, _, err := a.c.ExportChanges(ctx, 0, Identity{}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range all {
		ops = append(ops, e.Version.Op+":"+e.Version.Name+":"+e.Version.Origin[:4])
	}
	want := []string{"put:x:" + a.id[:4], "put:y:" + b.id[:4], "delete:x:" + a.id[:4], "restore:x:" + a.id[:4]}
	if !slices.Equal(ops, want) {
		t.Fatalf("export ops = %v, want %v", ops, want)
	}
	if last != all[len(all)-1].Seq {
		t.Errorf("last = %d, want %d", last, all[len(all)-1].Seq)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Errorf("export out of order: %d then %d", all[i-1].Seq, all[i].Seq)
		}
	}
	x := all[0].Version
	if x.SHA256 != v1.SHA256 || x.Size != v1.Size || x.Chunks != 1 || x.ContentType != v1.ContentType ||
		!x.Created.Equal(v1.Created) || x.MTime.UnixNano() != v1.MTime.UnixNano() || x.VV.Compare(VV{a.id: 1}) != Equal {
		t.Errorf("exported put = %+v, want %+v", x, v1)
	}
	if r := all[3].Version; r.Deleted || r.SHA256 != v1.SHA256 || r.VV.Compare(VV{a.id: 3}) != Equal {
		t.Errorf("exported restore = %+v", r)
	}
	if d := all[2].Version; !d.Deleted || d.VV.Compare(VV{a.id: 2}) != Equal || d.Chunks != 0 {
		t.Errorf("exported delete = %+v", d)
	}

	// For B: B's own change is left out, and the cursor still moves past it.
	page, last1, _, err := a.c.ExportChanges(ctx, 0, Identity{}, 2, b.id)
	if err != nil || len(page) != 1 || page[0].Version.Name != "x" || last1 != all[1].Seq {
		t.Errorf("first page for B = %+v, last %d, %v; want x only, last %d", page, last1, err, all[1].Seq)
	}
	page, last2, _, err := a.c.ExportChanges(ctx, last1, Identity{}, 2, b.id)
	if err != nil || len(page) != 2 || last2 != all[3].Seq {
		t.Errorf("second page for B = %+v, last %d, %v", page, last2, err)
	}
	page, last3, _, err := a.c.ExportChanges(ctx, last2, Identity{}, 2, b.id)
	if err != nil || len(page) != 0 || last3 != last2 {
		t.Errorf("page past the end = %+v, last %d, %v; want nothing, last %d", page, last3, err, last2)
	}
	checkSyncInvariants(t, a, b)
}

// (g) ApplyRemote refuses malformed versions, and a refusal changes nothing:
// the same identity applies normally afterwards.
func TestApplyRemoteRefusals(t *testing.T) {
	ctx := context.Background()
	a := newSyncNode(t, 1)
	good := RemoteVersion{
		Origin: a.id, OriginSeq: 7, Op: "put", Name: "dir/file", Size: 2001, Mode: 0o644,
		MTime: t0, SHA256: digest("remote"), Created: t0, VV: VV{a.id: 1}, Chunks: 2,
	}
	goodChunks := refs(1, 1)
	for _, tc := range []struct {
		name   string
		mod    func(rv *RemoteVersion)
		chunks []ChunkRef
		bug    string // set when accepting it is a known defect
	}{
		{"empty name", func(rv *RemoteVersion) { rv.Name = "" }, goodChunks, ""},
		{"escaping name", func(rv *RemoteVersion) { rv.Name = "../etc/passwd" }, goodChunks, ""},
		{"absolute name", func(rv *RemoteVersion) { rv.Name = "/etc/passwd" }, goodChunks, ""},
		{"empty segment", func(rv *RemoteVersion) { rv.Name = "a//b" }, goodChunks, ""},
		{"NUL in name", func(rv *RemoteVersion) { rv.Name = "a\x00b" }, goodChunks, ""},
		{"unknown op", func(rv *RemoteVersion) { rv.Op = "rename" }, goodChunks, ""},
		{"empty op", func(rv *RemoteVersion) { rv.Op = "" }, goodChunks, ""},
		{"metadata not JSON", func(rv *RemoteVersion) { rv.Meta = "{" }, goodChunks, ""},
		{"metadata not canonical", func(rv *RemoteVersion) { rv.Meta = `{ "etag":"x"}` }, goodChunks, ""},
		{"metadata with a control character", func(rv *RemoteVersion) { rv.Meta = `{"user":{"a":"b\r\nc"}}` }, goodChunks, ""},
		{"metadata with an upper-case name", func(rv *RemoteVersion) { rv.Meta = `{"user":{"A":"b"}}` }, goodChunks, ""},
		{"metadata name not a token", func(rv *RemoteVersion) { rv.Meta = `{"user":{"a\u0001b":"c"}}` }, goodChunks, ""},
		{"parts that do not add up", func(rv *RemoteVersion) { rv.Meta = `{"parts":[[1000,2]]}` }, goodChunks, ""},
		{"metadata too large", func(rv *RemoteVersion) { rv.Meta = `{"etag":"` + strings.Repeat("e", MaxMeta) + `"}` }, goodChunks, ""},
		{"too few chunks", func(rv *RemoteVersion) {}, refs(1), ""},
		{"too many chunks", func(rv *RemoteVersion) {}, refs(1, 1, 2), ""},
		{"no chunks", func(rv *RemoteVersion) {}, nil, ""},
		{"origin not a node ID", func(rv *RemoteVersion) { rv.Origin = "node-x"; rv.VV = VV{"node-x": 1} }, goodChunks, ""},
		{"empty origin", func(rv *RemoteVersion) { rv.Origin = "" }, goodChunks, ""},
		{"truncated origin", func(rv *RemoteVersion) { rv.Origin = a.id[:51] }, goodChunks, ""},
		{"zero origin seq", func(rv *RemoteVersion) { rv.OriginSeq = 0 }, goodChunks, ""},
		{"negative origin seq", func(rv *RemoteVersion) { rv.OriginSeq = -1 }, goodChunks, ""},
		{"negative size", func(rv *RemoteVersion) { rv.Size = -1 }, goodChunks, ""},
		{"negative chunk count", func(rv *RemoteVersion) { rv.Chunks = -1 }, nil, ""},
		{"chunk without stored size", func(rv *RemoteVersion) {}, []ChunkRef{ref(1), {ID: cid(2), Plain: 10, Stored: 0}}, ""},
		{"chunk with negative plain size", func(rv *RemoteVersion) {}, []ChunkRef{ref(1), {ID: cid(2), Plain: -1, Stored: 10}}, ""},
		{"vector too large", func(rv *RemoteVersion) {
			rv.VV = VV{a.id: 1}
			for i := range MaxOrigins {
				rv.VV[fmt.Sprint("n", i)] = 1
			}
		}, goodChunks, ""},
		{"vector with a negative count", func(rv *RemoteVersion) { rv.VV = VV{a.id: 1, store.PeerID{9}.String(): -1} }, goodChunks,
			"RemoteVersion.Validate (sync.go) does not check vector entries as ParseVV does"},
		{"vector with an empty origin", func(rv *RemoteVersion) { rv.VV = VV{a.id: 1, "": 1} }, goodChunks,
			"RemoteVersion.Validate (sync.go) does not check vector entries as ParseVV does"},
		{"tombstone with chunks", func(rv *RemoteVersion) { rv.Op, rv.Deleted, rv.Chunks, rv.Size = "delete", true, 0, 0 }, goodChunks,
			"ApplyRemote (sync.go) skips the chunk count check for tombstones and attaches the chunks to the tombstone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newCluster(t, 2)[1] // fresh, so that a defect here does not leak into other cases
			rv := good
			rv.VV = maps.Clone(good.VV)
			tc.mod(&rv)
			before := heads(t, b.c)
			seq := lastChangeSeq(t, b.c)
			db := rawDB(t, b.path)
			nchunks := rawCount(t, db, `SELECT count(*) FROM chunks`)
			var ap Applied
			err := b.c.Tx(ctx, func(tx *Tx) error {
				var err error
				ap, err = tx.applyRV(ctx, rv, tc.chunks)
				return err
			})
			if err == nil {
				if tc.bug != "" {
					t.Errorf("BUG: ApplyRemote accepted %s (%+v): %s", tc.name, ap, tc.bug)
					// Show the damage it leaves.
					if _, _, _, err := b.c.ExportChanges(ctx, 0, Identity{}, 100, ""); err != nil {
						t.Errorf("BUG: after accepting it, ExportChanges fails for every peer: %v", err)
					}
					if hs := heads(t, b.c); len(hs) > 0 {
						for name := range hs {
							if err := b.c.Tx(ctx, func(tx *Tx) error {
								_, err := tx.AddVersion(ctx, nv(name, "local", 9))
								return err
							}); err != nil {
								t.Errorf("BUG: after accepting it, a local write to %s fails: %v", name, err)
							}
						}
					}
					checkSyncInvariants(t, b)
					return
				}
				t.Fatalf("ApplyRemote accepted %s: %+v", tc.name, ap)
			}
			if after := heads(t, b.c); !maps.Equal(before, after) {
				t.Errorf("refused apply changed objects: %s", describe(after))
			}
			if s := lastChangeSeq(t, b.c); s != seq {
				t.Errorf("refused apply logged a change: %d, was %d", s, seq)
			}
			if n := rawCount(t, db, `SELECT count(*) FROM chunks`); n != nchunks {
				t.Errorf("refused apply added chunk rows: %d, was %d", n, nchunks)
			}
		})
	}
	// After a refusal, the well-formed version with the same identity is
	// new, not a duplicate.
	c := newCluster(t, 1)[0]
	for _, rv := range []RemoteVersion{func() RemoteVersion { r := good; r.Chunks = 1; return r }(), good} {
		var ap Applied
		err := c.c.Tx(ctx, func(tx *Tx) error {
			var err error
			ap, err = tx.applyRV(ctx, rv, goodChunks)
			return err
		})
		if rv.Chunks == 1 {
			if err == nil {
				t.Fatalf("count mismatch accepted")
			}
			continue
		}
		if err != nil || ap.Duplicate || !ap.Added || ap.Name != "dir/file" {
			t.Fatalf("good version after a refusal: %+v, %v", ap, err)
		}
	}
	if st, _ := c.c.Lookup(ctx, cid(1)); st.Refs != 2 || st.Held {
		t.Errorf("chunk 1 = %+v, want 2 references, not held", st)
	}
	checkSyncInvariants(t, c)
}

func TestConflictName(t *testing.T) {
	id := store.PeerID{2}.String()
	short := id[:8]
	for _, tc := range []struct{ name, want string }{
		{"cat.jpg", "cat.conflict-" + short + ".jpg"},
		{"photos/cat.jpg", "photos/cat.conflict-" + short + ".jpg"},
		{"a.tar.gz", "a.tar.conflict-" + short + ".gz"},
		{"README", "README.conflict-" + short},
		{"dir.d/README", "dir.d/README.conflict-" + short},
		{".bashrc", ".bashrc.conflict-" + short},
		{"x/file.averyveryverylongext", "x/file.averyveryverylongext.conflict-" + short},
	} {
		if got := conflictName(tc.name, id); got != tc.want {
			t.Errorf("conflictName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := conflictName("f", "abc"); got != "f.conflict-abc" {
		t.Errorf("short origin: %q", got)
	}
	// A conflict copy is an object like any other: its name must be valid
	// whenever the original's is.
	long := strings.Repeat("s", names.MaxSegment)
	for _, name := range []string{long, "dir/" + long[:names.MaxSegment-4] + ".txt", strings.Repeat("d/", (names.MaxLen-10)/2) + "ab"} {
		if err := validName(name); err != nil {
			t.Fatalf("test name invalid: %v", err)
		}
		cn := conflictName(name, id)
		if err := validName(cn); err != nil {
			_, base := splitDir(cn)
			t.Errorf("BUG: ConflictName of a valid %d-byte name is invalid: %d bytes (limit %d), last segment %d bytes (limit %d)",
				len(name), len(cn), names.MaxLen, len(base), names.MaxSegment)
		}
	}

	// End to end: concurrent writes to a name with a 255-byte segment leave
	// an object whose name no command accepts and no file system can hold.
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	name := "dir/" + long
	a.put(t, t0.Add(time.Second), name, "a", 1)
	b.put(t, t0.Add(2*time.Second), name, "b", 2)
	gossip(t, a, b)
	for _, n := range nodes {
		for oname := range heads(t, n.c) {
			if validName(oname) != nil {
				_, base := splitDir(oname)
				t.Errorf("BUG: node %s holds an object with an invalid name (segment of %d bytes), made by ApplyRemote's conflict copy", n.id[:4], len(base))
			}
		}
	}
	checkSyncInvariants(t, a, b)
}

func FuzzConflictName(f *testing.F) {
	for _, s := range []string{"a", "a.b", "d/e.f", ".x", "x.", "a/..b", "x.tar.gz"} {
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, name string, node uint8) {
		if validName(name) != nil || len(name) > names.MaxLen-40 || hasLongSegment(name, names.MaxSegment-40) {
			return // room for the suffix; the limits are TestConflictName's
		}
		id := store.PeerID{node}.String()
		cn := conflictName(name, id)
		if err := validName(cn); err != nil {
			t.Fatalf("conflictName(%q) = %q: %v", name, cn, err)
		}
		if cn == name || !strings.Contains(cn, ".conflict-"+id[:8]) {
			t.Fatalf("conflictName(%q) = %q", name, cn)
		}
		if dir, _ := splitDir(name); !strings.HasPrefix(cn, dir) || strings.Count(cn, "/") != strings.Count(name, "/") {
			t.Fatalf("conflictName(%q) = %q moved the copy to another directory", name, cn)
		}
	})
}

func hasLongSegment(name string, n int) bool {
	for _, s := range strings.Split(name, "/") {
		if len(s) > n {
			return true
		}
	}
	return false
}

func splitDir(name string) (string, string) {
	i := strings.LastIndex(name, "/")
	return name[:i+1], name[i+1:]
}

// A node has one textual ID. store.ParsePeerID accepts either case, so
// Validate lets an upper-case spelling of an origin through; the same
// change must then still be recognised as the one already applied.
func TestApplyRemoteOriginSpelling(t *testing.T) {
	ctx := context.Background()
	a, b := newSyncNode(t, 1), newSyncNode(t, 2)
	rv := RemoteVersion{Origin: a.id, OriginSeq: 1, Op: "put", Name: "f", Size: 1001, Mode: 0o644,
		MTime: t0, SHA256: digest("x"), Created: t0, VV: VV{a.id: 1}, Chunks: 1}
	apply := func(rv RemoteVersion) (Applied, error) {
		var ap Applied
		err := b.c.Tx(ctx, func(tx *Tx) error {
			var err error
			ap, err = tx.applyRV(ctx, rv, refs(1))
			return err
		})
		return ap, err
	}
	if ap, err := apply(rv); err != nil || !ap.Added {
		t.Fatalf("apply: %+v, %v", ap, err)
	}
	upper := rv
	upper.Origin = strings.ToUpper(a.id)
	upper.VV = VV{upper.Origin: 1}
	ap, err := apply(upper)
	if err == nil && !ap.Duplicate {
		t.Errorf("BUG: the same change (origin %s/1) spelled in upper case was applied again as a new change: %+v; "+
			"RemoteVersion.Validate (sync.go) accepts any case through store.ParsePeerID but the catalog keys identities and vectors by the exact string", a.id[:8], ap)
	}
	if hs := heads(t, b.c); len(hs) != 1 {
		t.Errorf("B has objects:\n%s", describe(hs))
	}
}

// TestSyncMetaTravels: an S3 object's metadata reaches a peer with its
// version, survives a restore and a copy, and is part of the change's
// hash (a version that differs only in metadata is another change).
func TestSyncMetaTravels(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	meta := Meta{ETag: "0123abcd", CacheControl: "max-age=5", User: map[string]string{"camera": "x100", "lens": "23mm"}, Parts: [][2]int64{{1001, 1}, {1002, 1}}}
	v := nv("bucket/key", "one", 1, 2)
	v.Meta = meta
	got := add(t, a.c, v).Version
	if !reflect.DeepEqual(got.Meta, meta) {
		t.Fatalf("AddVersion returned meta %+v", got.Meta)
	}
	if h := mustHead(t, a, "bucket/key"); !reflect.DeepEqual(h.Meta, meta) {
		t.Fatalf("head on A has meta %+v", h.Meta)
	}
	syncOnce(t, a.c, b.c)
	if h := mustHead(t, b, "bucket/key"); !reflect.DeepEqual(h.Meta, meta) {
		t.Fatalf("head on B has meta %+v, want %+v", h.Meta, meta)
	}
	// The same content with other metadata is a new version.
	v.Meta = Meta{ETag: "0123abcd"}
	if a2 := add(t, a.c, v); a2.Unchanged || a2.Version.Num != 2 {
		t.Fatalf("other metadata: %+v", a2)
	}
	err := a.c.Tx(ctx, func(tx *Tx) error {
		if _, _, err := tx.Restore(ctx, names.Must("bucket/key"), 1); err != nil {
			return err
		}
		_, err := tx.CopyVersion(ctx, names.Must("bucket/key"), 0, names.Must("bucket/copy"), false, "", Meta{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bucket/key", "bucket/copy"} {
		if h := mustHead(t, a, name); !reflect.DeepEqual(h.Meta, meta) || h.Size != mustHead(t, a, "bucket/key").Size {
			t.Fatalf("%s after restore and copy has meta %+v", name, h.Meta)
		}
	}
}

// TestCopyKeepsHeld: a copy of a version whose chunks only a peer holds
// takes references without claiming the files are here.
func TestCopyKeepsHeld(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2)
	a, b := nodes[0], nodes[1]
	a.put(t, t0.Add(time.Second), "bucket/src", "one", 1, 2)
	syncOnce(t, a.c, b.c)
	err := b.c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.CopyVersion(ctx, names.Must("bucket/src"), 0, names.Must("bucket/dst"), false, "", Meta{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		st, err := b.c.Lookup(ctx, cid(i))
		if err != nil {
			t.Fatal(err)
		}
		if st.Held || st.Refs != 2 {
			t.Fatalf("chunk %d on B after the copy: %+v, want not held with 2 references", i, st)
		}
	}
}
