package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// Environment variables that steer TestSyncConvergesRandomly:
//
//	LOFT_SYNC_SEED=n      run seed n only, logging every operation
//	LOFT_SYNC_SEEDS=n     run seeds 1..n (default 40, 20 with -short)
//	LOFT_SYNC_MINIMIZE=1  with LOFT_SYNC_SEED: shrink a failing seed's
//	                      operations to a minimal failing sequence and log it
//	LOFT_SYNC_MATCH=s     while minimizing, count as failing only runs with a
//	                      failure message containing s
//	LOFT_SYNC_NODELETE=1  draw puts instead of deletes (to tell failures that
//	                      need a delete from others)
//
// A seed also runs alone as the subtest seed=n:
//
//	go test -run 'TestSyncConvergesRandomly/seed=17$' ./catalog/
const (
	convSeedEnv     = "LOFT_SYNC_SEED"
	convSeedsEnv    = "LOFT_SYNC_SEEDS"
	convMinimizeEnv = "LOFT_SYNC_MINIMIZE"
	convMatchEnv    = "LOFT_SYNC_MATCH"
	convNoDeleteEnv = "LOFT_SYNC_NODELETE"
	convOps         = 30
)

// convNames are the names the random operations write: one plain, one in
// a directory with an extension, one without.
var convNames = []string{"f", "d/g.txt", "h"}

type convKind int

const (
	convPut convKind = iota
	convDelete
	convRestore
	convSync
)

// convOp is one random operation, drawn without looking at the nodes'
// state: an operation that does not apply when it runs (a delete of an
// object that is not live there, a restore with nothing to restore) is
// skipped. That keeps a sequence meaningful when operations are removed
// from it to minimize a failure.
type convOp struct {
	Kind   convKind
	Node   int // the writer, or the node pulled from
	To     int // the node that pulls (convSync)
	Name   string
	Chunks []int // content of a put
	Pick   int   // which older version a restore picks
}

var nodeLetters = "ABC"

func (o convOp) String() string {
	n := nodeLetters[o.Node : o.Node+1]
	switch o.Kind {
	case convPut:
		return fmt.Sprintf("put %s %s %v", n, o.Name, o.Chunks)
	case convDelete:
		return fmt.Sprintf("delete %s %s", n, o.Name)
	case convRestore:
		return fmt.Sprintf("restore %s %s pick %d", n, o.Name, o.Pick)
	default:
		return fmt.Sprintf("sync %s->%s", n, nodeLetters[o.To:o.To+1])
	}
}

func randomConvOps(seed uint64, n int) []convOp {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	noDelete := os.Getenv(convNoDeleteEnv) != ""
	ops := make([]convOp, n)
	for i := range ops {
		o := convOp{Node: rng.IntN(3), Name: convNames[rng.IntN(len(convNames))], Pick: rng.IntN(8)}
		switch k := rng.IntN(20); {
		case k < 8 || k < 11 && noDelete:
			o.Kind = convPut
			o.Chunks = make([]int, rng.IntN(4))
			for j := range o.Chunks {
				o.Chunks[j] = rng.IntN(6)
			}
		case k < 11:
			o.Kind = convDelete
		case k < 13:
			o.Kind = convRestore
		default:
			o.Kind = convSync
			o.To = (o.Node + 1 + rng.IntN(2)) % 3
		}
		ops[i] = o
	}
	return ops
}

// convWrite is a version some node wrote locally, as its log identifies it.
type convWrite struct {
	Label   string // w<op index>: the operation that wrote it
	Name    string
	Node    int
	Origin  string
	Seq     int64
	VV      VV
	Created int64
	Deleted bool
	SHA256  Digest
}

func (w convWrite) key() string { return fmt.Sprintf("%s/%d", w.Origin, w.Seq) }

func (w convWrite) String() string {
	what := "content " + w.SHA256.String()[:8]
	if w.Deleted {
		what = "tombstone"
	}
	return fmt.Sprintf("%s (%s%d %s, vv %s, created +%ds)", w.Label, nodeLetters[w.Node:w.Node+1], w.Seq, what,
		shortVV(w.VV), time.Duration(w.Created-t0.UnixNano())/time.Second)
}

func shortVV(v VV) string {
	var parts []string
	for i, n := range convNodeIDs() {
		if v[n] > 0 {
			parts = append(parts, fmt.Sprintf("%c%d", nodeLetters[i], v[n]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func convNodeIDs() []string {
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = store.PeerID{byte(i + 1)}.String() // as newCluster names them
	}
	return ids
}

// convHead is an object's newest version as stored: its identity and what
// it shows.
type convHead struct {
	Origin  string
	Seq     int64
	Deleted bool
	SHA256  Digest
	Created int64
}

func (h convHead) key() string { return fmt.Sprintf("%s/%d", h.Origin, h.Seq) }

// convRun is one run of a sequence of operations on a fresh cluster.
type convRun struct {
	t      testing.TB
	ctx    context.Context
	nodes  []*syncNode
	dbs    []*sql.DB
	tick   int
	writes map[string]convWrite // by identity
	trace  []string             // the operations as run, with what they did
}

func newConvRun(t testing.TB) *convRun {
	r := &convRun{t: t, ctx: context.Background(), nodes: newCluster(t, 3), writes: map[string]convWrite{}}
	for _, n := range r.nodes {
		r.dbs = append(r.dbs, rawDB(t, n.path))
	}
	return r
}

// now advances the global clock: every operation happens at its own
// second, so creation times are distinct across nodes.
func (r *convRun) now() time.Time {
	r.tick++
	return t0.Add(time.Duration(r.tick) * time.Second)
}

func (r *convRun) nodeName(i int) string { return nodeLetters[i : i+1] }

// headOf reads the newest version of name on node i.
func (r *convRun) headOf(i int, name string) (convHead, bool) {
	var h convHead
	var sum []byte
	err := r.dbs[i].QueryRow(`SELECT v.origin, v.origin_seq, v.deleted, v.sha256, v.created FROM objects o
		JOIN versions v ON v.object_id = o.id AND v.num = o.head WHERE o.name = ?`, name).
		Scan(&h.Origin, &h.Seq, &h.Deleted, &sum, &h.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return h, false
	}
	if err != nil {
		r.t.Fatalf("node %s: head of %s: %v", r.nodeName(i), name, err)
	}
	copy(h.SHA256[:], sum)
	return h, true
}

// liveHeads returns the head of every live object on node i.
func (r *convRun) liveHeads(i int) map[string]convHead {
	rows, err := r.dbs[i].Query(`SELECT o.name, v.origin, v.origin_seq, v.deleted, v.sha256, v.created FROM objects o
		JOIN versions v ON v.object_id = o.id AND v.num = o.head WHERE v.deleted = 0`)
	if err != nil {
		r.t.Fatalf("node %s: read heads: %v", r.nodeName(i), err)
	}
	defer rows.Close()
	out := map[string]convHead{}
	for rows.Next() {
		var name string
		var h convHead
		var sum []byte
		if err := rows.Scan(&name, &h.Origin, &h.Seq, &h.Deleted, &sum, &h.Created); err != nil {
			r.t.Fatalf("scan: %v", err)
		}
		copy(h.SHA256[:], sum)
		out[name] = h
	}
	if err := rows.Err(); err != nil {
		r.t.Fatalf("read heads: %v", err)
	}
	return out
}

// frontierOf reads the frontier of name on node i.
func (r *convRun) frontierOf(i int, name string) []sibling {
	var s string
	err := r.dbs[i].QueryRow(`SELECT siblings FROM objects WHERE name = ?`, name).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		r.t.Fatalf("node %s: frontier of %s: %v", r.nodeName(i), name, err)
	}
	var front []sibling
	if err := json.Unmarshal([]byte(s), &front); err != nil {
		r.t.Fatalf("node %s: frontier of %s = %q: %v", r.nodeName(i), name, s, err)
	}
	return front
}

// recordWrite notes the version a local write on node i just made.
func (r *convRun) recordWrite(i int, name, label string) convWrite {
	var w convWrite
	var vvs string
	var sum []byte
	err := r.dbs[i].QueryRow(`SELECT v.origin, v.origin_seq, v.vv, v.created, v.deleted, v.sha256 FROM objects o
		JOIN versions v ON v.object_id = o.id AND v.num = o.head WHERE o.name = ?`, name).
		Scan(&w.Origin, &w.Seq, &vvs, &w.Created, &w.Deleted, &sum)
	if err != nil {
		r.t.Fatalf("node %s: read back the write to %s: %v", r.nodeName(i), name, err)
	}
	vv, err := ParseVV(vvs)
	if err != nil {
		r.t.Fatal(err)
	}
	copy(w.SHA256[:], sum)
	w.Label, w.Name, w.Node, w.VV = label, name, i, vv
	if w.Origin != r.nodes[i].id {
		r.t.Fatalf("node %s: the write to %s has origin %s", r.nodeName(i), name, w.Origin)
	}
	if _, dup := r.writes[w.key()]; dup {
		r.t.Fatalf("node %s: two writes with identity %s", r.nodeName(i), w.key())
	}
	r.writes[w.key()] = w
	return w
}

// step runs operation k (op) and reports whether it applied.
func (r *convRun) step(k int, op convOp) bool {
	t := r.t
	n := r.nodes[op.Node]
	label := fmt.Sprintf("w%d", k)
	switch op.Kind {
	case convPut:
		n.put(t, r.now(), op.Name, label, op.Chunks...)
	case convDelete:
		h, ok := r.headOf(op.Node, op.Name)
		if !ok || h.Deleted {
			return false
		}
		n.at(r.now())
		if _, err := del(n.c, op.Name); err != nil {
			t.Fatalf("op %d (%s): %v", k, op, err)
		}
	case convRestore:
		vs, err := n.c.Versions(r.ctx, names.Must(op.Name))
		if errors.Is(err, ErrNotFound) {
			return false
		}
		if err != nil {
			t.Fatalf("op %d (%s): Versions: %v", k, op, err)
		}
		var cands []int64
		for _, v := range vs[1:] { // newest first: vs[0] is the head
			if !v.Deleted {
				cands = append(cands, v.Num)
			}
		}
		if len(cands) == 0 {
			return false
		}
		num := cands[op.Pick%len(cands)]
		n.at(r.now())
		if _, added, err := restore(n.c, op.Name, num); err != nil || !added {
			t.Fatalf("op %d (%s): restore of version %d: added %v, %v", k, op, num, added, err)
		}
		label = fmt.Sprintf("%s(restores #%d)", label, num)
	case convSync:
		r.nodes[op.To].at(r.now())
		aps := syncOnce(t, n.c, r.nodes[op.To].c)
		r.trace = append(r.trace, fmt.Sprintf("%2d %s: %d changes", k, op, len(aps)))
		return true
	}
	w := r.recordWrite(op.Node, op.Name, label)
	r.trace = append(r.trace, fmt.Sprintf("%2d %s -> %s", k, op, w))
	return true
}

// run runs ops, gossips until quiescent and checks the end state.
func (r *convRun) run(ops []convOp) {
	for k, op := range ops {
		r.step(k, op)
	}
	for _, n := range r.nodes {
		n.at(r.now())
	}
	gossip(r.t, r.nodes...)
	r.check()
}

// check verifies the end state after a full gossip: every node shows what
// resolve makes of the versions that no written version follows.
func (r *convRun) check() {
	t := r.t
	converged(t, r.nodes...)
	checkSyncInvariants(t, r.nodes...)

	written := map[Digest]bool{} // content some node wrote
	byName := map[string][]convWrite{}
	for _, w := range r.writes {
		if !w.Deleted {
			written[w.SHA256] = true
		}
		byName[w.Name] = append(byName[w.Name], w)
	}

	// What every node must show: for each name, the versions no other
	// version of it follows; the earliest live one keeps the name, the other
	// live ones are conflict copies named after their nodes.
	want := map[string]convWrite{}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		var max []convWrite
		for _, w := range byName[name] {
			followed := false
			for _, o := range byName[name] {
				if o.key() != w.key() && w.VV.Compare(o.VV) == Before {
					followed = true
				}
			}
			if !followed {
				max = append(max, w)
			}
		}
		for i := range r.nodes {
			got := map[string]bool{}
			for _, s := range r.frontierOf(i, name) {
				got[fmt.Sprintf("%s/%d", s.Origin, s.Seq)] = true
			}
			wantKeys := map[string]bool{}
			for _, w := range max {
				wantKeys[w.key()] = true
			}
			if !maps.Equal(got, wantKeys) {
				t.Errorf("node %s: frontier of %s = %s, want %s", r.nodeName(i), name, r.describeKeys(got), r.describeKeys(wantKeys))
			}
		}
		var live []convWrite
		for _, w := range max {
			if !w.Deleted {
				live = append(live, w)
			}
		}
		slices.SortFunc(live, func(a, b convWrite) int {
			if a.Created != b.Created {
				return cmpInt64(a.Created, b.Created)
			}
			return strings.Compare(a.Origin, b.Origin)
		})
		for j, w := range live {
			if j == 0 {
				want[name] = w
			} else {
				want[conflictName(name, w.Origin)] = w
			}
		}
		// The name's head is on the frontier, even when it is a deletion.
		for i := range r.nodes {
			h, ok := r.headOf(i, name)
			if !ok {
				t.Errorf("node %s: %s does not exist", r.nodeName(i), name)
				continue
			}
			if !slices.ContainsFunc(r.frontierOf(i, name), func(s sibling) bool { return s.same(h.Origin, h.Seq) }) {
				t.Errorf("node %s: head of %s is %s, not on the node's own frontier", r.nodeName(i), name, r.describeKey(h.key()))
			}
			if !slices.ContainsFunc(max, func(m convWrite) bool { return m.key() == h.key() }) {
				t.Errorf("node %s: head of %s is %s, not on the expected frontier %s", r.nodeName(i), name, r.describeKey(h.key()), r.describeWrites(max))
			}
		}
	}

	for i := range r.nodes {
		got := r.liveHeads(i)
		for name, h := range got {
			w, ok := r.writes[h.key()]
			switch {
			case !written[h.SHA256]:
				t.Errorf("node %s: %s shows content %s that no node wrote", r.nodeName(i), name, h.SHA256.String()[:8])
			case !ok:
				t.Errorf("node %s: %s shows %s, not a version any node wrote", r.nodeName(i), name, h.key())
			case w.SHA256 != h.SHA256 || w.Created != h.Created:
				t.Errorf("node %s: %s shows identity %s with content %s, but that version is %s", r.nodeName(i), name, h.key(), h.SHA256.String()[:8], w)
			}
			if _, ok := want[name]; !ok {
				t.Errorf("node %s: %s is live with %s; it should not be (a conflict copy not retired?)", r.nodeName(i), name, r.describeKey(h.key()))
			}
		}
		for name, w := range want {
			h, ok := got[name]
			switch {
			case !ok && strings.Contains(name, ".conflict-"):
				t.Errorf("node %s: DATA LOSS: frontier version %s is not shown: conflict copy %s is missing", r.nodeName(i), w, name)
			case !ok:
				t.Errorf("node %s: DATA LOSS: frontier version %s is not shown: %s is not live", r.nodeName(i), w, name)
			case h.key() != w.key():
				t.Errorf("node %s: %s shows %s, want %s", r.nodeName(i), name, r.describeKey(h.key()), w)
			}
		}
		// No data loss, by content: every live frontier version's content is
		// the head of its name or of one of its conflict copies.
		for _, w := range want {
			found := false
			for name, h := range got {
				if h.SHA256 == w.SHA256 && (name == w.Name || slices.ContainsFunc(convNodeIDs(), func(id string) bool { return name == conflictName(w.Name, id) })) {
					found = true
				}
			}
			if !found {
				t.Errorf("node %s: DATA LOSS: the content of frontier version %s is not the head of %s or of any of its conflict copies", r.nodeName(i), w, w.Name)
			}
		}
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *convRun) describeKey(k string) string {
	if w, ok := r.writes[k]; ok {
		return w.String()
	}
	return k + " (unknown)"
}

func (r *convRun) describeKeys(keys map[string]bool) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		out = append(out, r.describeKey(k))
	}
	return "{" + strings.Join(out, "; ") + "}"
}

func (r *convRun) describeWrites(ws []convWrite) string {
	keys := map[string]bool{}
	for _, w := range ws {
		keys[w.key()] = true
	}
	return r.describeKeys(keys)
}

func convSeeds(t *testing.T) []uint64 {
	if s := os.Getenv(convSeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", convSeedEnv, s, err)
		}
		return []uint64{seed}
	}
	n := 40 // under -race about a second each; LOFT_SYNC_SEEDS=1000 for a deeper run
	if testing.Short() {
		n = 20
	}
	if s := os.Getenv(convSeedsEnv); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("%s=%q: %v", convSeedsEnv, s, err)
		}
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// Random local writes, deletes and restores on three nodes, with random
// one-way syncs between them: after a full gossip every node shows the same
// objects, namely what resolve makes of the versions no written version
// follows, with no content invented and none lost.
func TestSyncConvergesRandomly(t *testing.T) {
	seeds := convSeeds(t)
	single := len(seeds) == 1 && os.Getenv(convSeedEnv) != ""
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if !single {
				t.Parallel()
			}
			ops := randomConvOps(seed, convOps)
			if single && os.Getenv(convMinimizeEnv) != "" {
				minimizeConv(t, seed, ops)
				return
			}
			r := newConvRun(t)
			defer func() {
				if t.Failed() || single {
					t.Logf("seed %d (replay: %s=%d go test -run 'TestSyncConvergesRandomly' ./catalog/; minimize: add %s=1); operations:\n\t%s",
						seed, convSeedEnv, seed, convMinimizeEnv, strings.Join(r.trace, "\n\t"))
				}
			}()
			r.run(ops)
		})
	}
}

// Failing seeds of TestSyncConvergesRandomly, minimized
// (LOFT_SYNC_MINIMIZE): each is a whole run, ending with a full gossip and
// the same checks. Node 0 is A, 1 is B, 2 is C.
func TestSyncConvergesMinimal(t *testing.T) {
	put := func(node int, name string, chunks ...int) convOp {
		return convOp{Kind: convPut, Node: node, Name: name, Chunks: chunks}
	}
	rm := func(node int, name string) convOp { return convOp{Kind: convDelete, Node: node, Name: name} }
	pull := func(from, to int) convOp { return convOp{Kind: convSync, Node: from, To: to} }
	for _, tc := range []struct {
		name string
		ops  []convOp
	}{
		// B deletes its write b1 while A writes a1 concurrently. A applies
		// b1 then B's tombstone: its frontier is {a1, tombstone}, and the
		// tombstone, which loses to a1, gets no version row on A. A then
		// exports the tombstone as Gone; C, pulling from A first, logs its
		// identity as applied and later drops the real tombstone from B as a
		// duplicate. A and B show f = a1; C shows f = b1 (deleted by B) and
		// f.conflict-A = a1.
		{"losing delete relayed as gone", []convOp{
			put(1, "f", 1), put(0, "f", 2), rm(1, "f"), pull(1, 0),
		}},
		// As above, and C deletes a1 after seeing it. On A the frontier
		// becomes {B's tombstone, C's tombstone}: resolve picks B's, the
		// earlier, which has no row on A, and ApplyRemote fails with "sql:
		// no rows in result set": A can never apply C's changes again.
		{"unshown delete becomes the winner", []convOp{
			put(1, "f", 1), put(0, "f", 2), rm(1, "f"), pull(0, 2), rm(2, "f"),
		}},
		// Two concurrent deletes: A shows its own, B's gets no row on A and
		// reaches C as Gone, then as a duplicate from B. C's frontier misses
		// B's tombstone: the frontiers diverge, though nothing shown differs
		// in this sequence.
		{"concurrent deletes", []convOp{
			put(2, "f", 1), pull(2, 1), pull(1, 0), rm(0, "f"), rm(1, "f"), pull(1, 0),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newConvRun(t)
			defer func() {
				if t.Failed() {
					t.Logf("operations:\n\t%s", strings.Join(r.trace, "\n\t"))
				}
			}()
			r.run(tc.ops)
		})
	}
}

// recTB records failures instead of failing the test, so that a sequence
// can be tried while it is being minimized. Fatal stops the goroutine that
// runs the attempt.
type recTB struct {
	testing.TB
	dir      string
	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
	ndirs    int
}

func (r *recTB) Helper() {}
func (r *recTB) Errorf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, a...))
}
func (r *recTB) Error(a ...any)                 { r.Errorf("%s", fmt.Sprint(a...)) }
func (r *recTB) Fatalf(format string, a ...any) { r.Errorf(format, a...); runtime.Goexit() }
func (r *recTB) Fatal(a ...any)                 { r.Error(a...); runtime.Goexit() }
func (r *recTB) Fail()                          { r.Errorf("failed") }
func (r *recTB) FailNow()                       { r.Fail(); runtime.Goexit() }
func (r *recTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}
func (r *recTB) Log(a ...any)                 {}
func (r *recTB) Logf(format string, a ...any) {}
func (r *recTB) Cleanup(f func())             { r.cleanups = append(r.cleanups, f) }
func (r *recTB) TempDir() string {
	r.ndirs++
	d := filepath.Join(r.dir, fmt.Sprint(r.ndirs))
	if err := os.MkdirAll(d, 0o755); err != nil {
		panic(err)
	}
	return d
}

// tryConv runs ops on a fresh cluster and returns the failures, if any.
func tryConv(t *testing.T, dir string, ops []convOp) (failed bool, msgs, trace []string) {
	rt := &recTB{TB: t, dir: dir}
	var r *convRun
	done := make(chan struct{})
	go func() {
		defer close(done)
		r = newConvRun(rt)
		r.run(ops)
	}()
	<-done
	for i := len(rt.cleanups) - 1; i >= 0; i-- {
		rt.cleanups[i]()
	}
	os.RemoveAll(dir)
	if r != nil {
		trace = r.trace
	}
	return rt.failed, rt.msgs, trace
}

// minimizeConv shrinks a failing sequence by removing operations while it
// still fails, and logs the shortest it found.
func minimizeConv(t *testing.T, seed uint64, ops []convOp) {
	base := t.TempDir()
	attempt := 0
	match := os.Getenv(convMatchEnv)
	try := func(ops []convOp) (bool, []string, []string) {
		attempt++
		failed, msgs, trace := tryConv(t, filepath.Join(base, fmt.Sprint(attempt)), ops)
		if failed && match != "" && !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, match) }) {
			failed = false
		}
		return failed, msgs, trace
	}
	failed, msgs, _ := try(ops)
	if !failed {
		t.Logf("seed %d passes: nothing to minimize", seed)
		return
	}
	first := msgs[0]
	for changed := true; changed; {
		changed = false
		for i := len(ops) - 1; i >= 0; i-- {
			cand := slices.Delete(slices.Clone(ops), i, i+1)
			if f, _, _ := try(cand); f {
				ops, changed = cand, true
			}
		}
	}
	_, msgs, trace := try(ops)
	t.Errorf("seed %d: minimal failing sequence (%d operations; first failure of the full sequence was: %s):\n\t%s\nfailures:\n\t%s",
		seed, len(ops), first, strings.Join(trace, "\n\t"), strings.Join(msgs, "\n\t"))
}

// The review scenario: a1 on A and b1 on B are concurrent; A writes a2
// after a1 before it sees b1. X receives a1, then b1, then a2; A receives
// b1; B receives a1 and a2. Everywhere, the name shows the earlier of the
// frontier {a2, b1} by creation time and the other is its conflict copy,
// whatever the order of the creation times.
func TestSyncReviewScenario(t *testing.T) {
	const name = "review/doc.txt"
	for _, tc := range []struct {
		order         string
		ta1, tb1, ta2 time.Duration
	}{
		{"a1 < b1 < a2", 1 * time.Second, 2 * time.Second, 3 * time.Second},
		{"b1 < a1 < a2", 2 * time.Second, 1 * time.Second, 3 * time.Second},
		{"a1 < a2 < b1", 1 * time.Second, 3 * time.Second, 2 * time.Second},
	} {
		t.Run(tc.order, func(t *testing.T) {
			nodes := newCluster(t, 3)
			a, b, x := nodes[0], nodes[1], nodes[2]
			xt := t0.Add(time.Minute) // X's clock, ahead of every write
			xsync := func(from *syncNode) []Applied {
				xt = xt.Add(time.Second)
				x.at(xt)
				return syncOnce(t, from.c, x.c)
			}

			a1 := a.put(t, t0.Add(tc.ta1), name, "a1", 1)
			if aps := xsync(a); len(aps) != 1 || !aps[0].Added {
				t.Fatalf("X applied %+v, want a1", aps)
			}
			b1 := b.put(t, t0.Add(tc.tb1), name, "b1", 2)
			a2 := a.put(t, t0.Add(tc.ta2), name, "a2", 3)
			if aps := xsync(b); len(aps) != 1 || !aps[0].Added {
				t.Fatalf("X applied %+v, want b1", aps)
			}
			// X shows the conflict of a1 and b1.
			first, second := a1, b1
			if tc.tb1 < tc.ta1 {
				first, second = b1, a1
			}
			checkShows(t, x, name, first, second)
			if aps := xsync(a); len(aps) != 1 || !aps[0].Added {
				t.Fatalf("X applied %+v, want a2 only (a1 is a duplicate and left out: the cursor moved past it)", aps)
			}
			first, second = a2, b1
			if tc.tb1 < tc.ta2 {
				first, second = b1, a2
			}
			checkShows(t, x, name, first, second)

			a.at(xt.Add(time.Second))
			syncOnce(t, b.c, a.c) // A receives b1
			checkShows(t, a, name, first, second)
			b.at(xt.Add(time.Second))
			syncOnce(t, a.c, b.c) // B receives a1 and a2
			checkShows(t, b, name, first, second)

			for _, n := range nodes {
				n.at(xt.Add(time.Minute))
			}
			gossip(t, nodes...)
			converged(t, nodes...)
			for _, n := range nodes {
				checkShows(t, n, name, first, second)
			}
			checkSyncInvariants(t, nodes...)
		})
	}
}

// checkShows checks that node n shows exactly first under name and second
// in second's conflict copy.
func checkShows(t *testing.T, n *syncNode, name string, first, second Version) {
	t.Helper()
	label := func(v Version) string { return strings.TrimPrefix(v.ContentType, "type/") }
	h := mustHead(t, n, name)
	if h.Deleted || h.SHA256 != first.SHA256 || h.Origin != first.Origin || !h.Created.Equal(first.Created) {
		t.Errorf("node %s: %s = %s, want %s (the earliest write on the frontier)", n.id[:4], name, infoOf(t, n.c, h), label(first))
	}
	cn := conflictName(name, second.Origin)
	c, err := n.c.Head(context.Background(), names.Must(cn))
	if err != nil || c.Deleted || c.SHA256 != second.SHA256 || c.Origin != second.Origin || !c.Created.Equal(second.Created) {
		t.Errorf("node %s: %s = %+v, %v; want %s", n.id[:4], cn, c, err, label(second))
	}
	if hs := heads(t, n.c); len(hs) != 2 {
		t.Errorf("node %s: live objects (want %s and %s only):\n%s", n.id[:4], name, cn, describe(hs))
	}
}
