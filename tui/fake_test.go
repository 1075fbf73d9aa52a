package tui

// A fake Backend and a harness that drives the model without a terminal:
// Update is called directly, and the commands it returns are run, their
// messages fed back, as bubbletea would.

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// fixedTime is the clock of every fake: far enough in the past that the
// views print dates, not "3s ago".
var fixedTime = time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)

// peerID returns a valid, fixed peer ID.
func peerID(seed byte) string {
	var p store.PeerID
	for i := range p {
		p[i] = seed + byte(i)
	}
	return p.String()
}

type fakeObject struct {
	name     string
	size     int64
	versions []catalog.Version // newest first
	copies   int
}

// fakeBackend is a tui.Backend with canned answers that records what the
// dashboard asked it to do.
type fakeBackend struct {
	mu      sync.Mutex
	status  node.Status
	stat    node.StatResult
	objects []fakeObject
	runs    []catalog.GCRun
	changes []catalog.Change
	events  chan node.Event // nil: no node serves the repository

	gcResult   gc.Result
	gcProgress []gc.Progress
	gcGate     chan struct{} // when set, a non-dry GC waits for it to close

	getGate chan struct{} // when set, Get waits for it to close

	statusCalls int
	removed     []string // "name recursive=bool"
	restored    []string // "name@num"
	gcs         []node.GCOptions
	invites     [][]string
	removedPeer []string
	gets        []string // "name -> dest"
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Status(ctx context.Context) (node.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusCalls++
	return f.status, nil
}

func (f *fakeBackend) Stat(ctx context.Context) (node.StatResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stat, nil
}

// List answers like the catalog: one level below prefix, each directory
// once, named with a trailing slash.
func (f *fakeBackend) List(ctx context.Context, pfx names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	prefix := pfx.String()
	f.mu.Lock()
	objs := append([]fakeObject(nil), f.objects...)
	f.mu.Unlock()
	p := strings.TrimRight(prefix, "/")
	if p != "" {
		p += "/"
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].name < objs[j].name })
	seen := map[string]bool{}
	found := false
	for _, o := range objs {
		if !strings.HasPrefix(o.name, p) {
			continue
		}
		head := o.versions[0]
		if head.Deleted && !opts.Deleted {
			continue
		}
		found = true
		rest := o.name[len(p):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			dir := p + rest[:i+1]
			if !seen[dir] {
				seen[dir] = true
				if err := fn(catalog.Entry{Name: dir, Dir: true}); err != nil {
					return err
				}
			}
			continue
		}
		if err := fn(catalog.Entry{Name: o.name, Versions: int64(len(o.versions)), Head: head}); err != nil {
			return err
		}
	}
	if !found && p != "" {
		return fmt.Errorf("%s: %w", prefix, catalog.ErrNotFound)
	}
	return nil
}

func (f *fakeBackend) object(name string) (*fakeObject, bool) {
	for i := range f.objects {
		if f.objects[i].name == name {
			return &f.objects[i], true
		}
	}
	return nil, false
}

func (f *fakeBackend) Versions(ctx context.Context, obj names.Name) ([]catalog.Version, error) {
	name := obj.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.object(name)
	if !ok {
		return nil, catalog.ErrNotFound
	}
	return append([]catalog.Version(nil), o.versions...), nil
}

func (f *fakeBackend) Restore(ctx context.Context, obj names.Name, num int64) (node.RestoreResult, error) {
	name := obj.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restored = append(f.restored, fmt.Sprintf("%s@%d", name, num))
	o, ok := f.object(name)
	if !ok {
		return node.RestoreResult{}, catalog.ErrNotFound
	}
	v := o.versions[len(o.versions)-int(num)]
	v.RestoredFrom, v.Num = num, o.versions[0].Num+1
	o.versions = append([]catalog.Version{v}, o.versions...)
	return node.RestoreResult{Version: v}, nil
}

func (f *fakeBackend) Remove(ctx context.Context, objs []names.Name, recursive bool) (node.RemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res node.RemoveResult
	for _, obj := range objs {
		n := obj.String()
		f.removed = append(f.removed, fmt.Sprintf("%s recursive=%v", n, recursive))
		for i := range f.objects {
			o := &f.objects[i]
			if o.name == n || (recursive && strings.HasPrefix(o.name, strings.TrimSuffix(n, "/")+"/")) {
				v := catalog.Version{Name: o.name, Num: o.versions[0].Num + 1, Deleted: true, Created: fixedTime}
				o.versions = append([]catalog.Version{v}, o.versions...)
				res.Deleted = append(res.Deleted, v)
			}
		}
	}
	return res, nil
}

func (f *fakeBackend) Get(ctx context.Context, target names.Prefix, dest string, opts node.GetOptions) (node.GetResult, error) {
	name := target.String()
	f.mu.Lock()
	f.gets = append(f.gets, name+" -> "+dest)
	gate := f.getGate
	f.mu.Unlock()
	if opts.Progress != nil {
		opts.Progress(node.GetProgress{FilesTotal: 2, BytesTotal: 2048, Files: 1, Bytes: 1024})
	}
	if gate != nil {
		<-gate
	}
	return node.GetResult{Files: 2, Bytes: 2048}, nil
}

func (f *fakeBackend) Copies(ctx context.Context, obj names.Name) (int, error) {
	name := obj.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.object(name)
	if !ok {
		return 0, catalog.ErrNotFound
	}
	return o.copies, nil
}

func (f *fakeBackend) GC(ctx context.Context, opts node.GCOptions) (gc.Result, error) {
	f.mu.Lock()
	f.gcs = append(f.gcs, opts)
	res, steps, gate := f.gcResult, f.gcProgress, f.gcGate
	f.mu.Unlock()
	res.DryRun = opts.DryRun
	if opts.DryRun {
		return res, nil
	}
	if opts.Progress != nil {
		for _, p := range steps {
			opts.Progress(p)
		}
	}
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	f.runs = append([]catalog.GCRun{{Started: fixedTime, Finished: fixedTime, Chunks: res.Chunks, Bytes: res.Bytes, Orphans: res.Orphans}}, f.runs...)
	f.mu.Unlock()
	return res, nil
}

func (f *fakeBackend) GCRuns(ctx context.Context, limit int) ([]catalog.GCRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]catalog.GCRun(nil), f.runs...), nil
}

func (f *fakeBackend) LastChanges(ctx context.Context, limit int) ([]catalog.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changes
	if len(c) > limit {
		c = c[len(c)-limit:]
	}
	return append([]catalog.Change(nil), c...), nil
}

func (f *fakeBackend) Changes(ctx context.Context, after int64, limit int) ([]catalog.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []catalog.Change
	for _, c := range f.changes {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeBackend) Invite(ctx context.Context, addrs []string, ttl time.Duration) (transfer.Invite, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invites = append(f.invites, addrs)
	id, err := store.ParsePeerID(f.status.Node.ID)
	if err != nil {
		return transfer.Invite{}, err
	}
	inv := transfer.Invite{Node: id, Addrs: addrs, Expires: fixedTime.Add(ttl)}
	for i := range inv.Secret {
		inv.Secret[i] = byte(i * 7)
	}
	return inv, nil
}

func (f *fakeBackend) RemovePeer(ctx context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removedPeer = append(f.removedPeer, ref)
	return nil
}

func (f *fakeBackend) Events(ctx context.Context) (<-chan node.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.events == nil {
		return nil, node.ErrNotServing
	}
	return f.events, nil
}

// calls returns a copy of a recorded list under the lock.
func (f *fakeBackend) snapshot(get func() []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), get()...)
}

// newFake returns a backend with a little of everything: this node and two
// storage peers (one offline) and a client, replication below R, a
// transfer in flight, garbage pending, files in a tree with versions, GC
// history and changes.
func newFake() *fakeBackend {
	me := peerID(1)
	f := &fakeBackend{}
	f.status = node.Status{
		Node: node.NodeStatus{ID: me, Name: "home", Chunks: 1200, Stored: 3 << 30, Free: 97 << 30},
		Peers: []node.PeerStatus{
			{ID: peerID(2), Name: "office", Role: "storage", State: "online", LastSeen: fixedTime, RTT: 1234 * time.Microsecond, Chunks: 900, Stored: 2 << 30, Free: 50 << 30, Addrs: []string{"192.0.2.1:7070"}},
			{ID: peerID(3), Name: "offsite", Role: "storage", State: "offline", LastSeen: fixedTime.Add(-72 * time.Hour), Chunks: 300, Stored: 1 << 30, Free: 10 << 30, Addrs: []string{"192.0.2.2:7070"}},
			{ID: peerID(4), Name: "laptop", Role: "client", State: "online", LastSeen: fixedTime},
		},
		Replication: node.ReplicationStatus{Replicas: 2, Chunks: 1200, Bytes: 3 << 30, Below: 340, BelowBytes: 1288490189, UnderRepair: 340},
		Transfer:    &node.Transfer{At: fixedTime, SendRate: 5 << 20, RecvRate: 1 << 20},
		GC:          catalog.GarbageTotals{Chunks: 12, Bytes: 12 << 20, Oldest: fixedTime.Add(-96 * time.Hour), ReclaimChunks: 10, ReclaimBytes: 10 << 20},
	}
	f.stat.LogicalBytes, f.stat.StoredBytes, f.stat.DedupRatio = 4<<30, 3<<30, 1.33
	f.stat.Objects, f.stat.Versions = 4, 6
	mk := func(name string, size int64, copies int, nums ...int64) fakeObject {
		o := fakeObject{name: name, size: size, copies: copies}
		for i := len(nums) - 1; i >= 0; i-- {
			o.versions = append(o.versions, catalog.Version{Name: name, Num: nums[i], Size: size * nums[i],
				MTime: fixedTime.Add(-time.Duration(nums[i]) * time.Hour), Created: fixedTime.Add(time.Duration(nums[i]) * time.Minute), Chunks: 1})
		}
		return o
	}
	f.objects = []fakeObject{
		mk("alpha.txt", 1000, 2, 1, 2, 3),
		mk("beta.bin", 5<<20, 1, 1),
		mk("docs/report.pdf", 300<<10, 2, 1),
		mk("docs/sub/notes.md", 42, 2, 1, 2),
		mk("gamma.log", 77, 2, 1),
	}
	f.runs = []catalog.GCRun{{Started: fixedTime.Add(-time.Hour), Finished: fixedTime.Add(-time.Hour), Chunks: 3, Bytes: 3 << 20, Orphans: 1}}
	f.changes = []catalog.Change{
		{Seq: 1, Origin: me, At: fixedTime.Add(-3 * time.Minute), Op: "put", Name: "alpha.txt", Version: 1},
		{Seq: 2, Origin: me, At: fixedTime.Add(-2 * time.Minute), Op: "delete", Name: "old.txt"},
		{Seq: 3, Origin: me, At: fixedTime.Add(-1 * time.Minute), Op: "peer-add", Detail: peerID(2)},
	}
	f.gcResult = gc.Result{Chunks: 10, Bytes: 10 << 20, Orphans: 1, OrphanBytes: 4096}
	f.gcProgress = []gc.Progress{{Phase: "sweep", Done: 4, Total: 10}}
	return f
}

// harness drives a Model as bubbletea would, without a terminal.
type harness struct {
	t    *testing.T
	m    tea.Model
	late chan tea.Msg // results of commands that did not return at once
	quit bool
}

// blockAfter is how long a command may take before the harness treats it
// as one that waits (a tick, the event stream, a progress channel): its
// message, if it ever comes, is handled later by until or settle.
const blockAfter = 150 * time.Millisecond

func newHarness(t *testing.T, b Backend, w, h int) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Refresh of an hour: ticks never fire during a test.
	hs := &harness{t: t, m: New(ctx, b, Options{Refresh: time.Hour, InviteAddrs: []string{"192.0.2.9:7070"}}), late: make(chan tea.Msg, 1000)}
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	hs.exec(hs.m.Init())
	hs.settle()
	return hs
}

// send feeds msg to Update and runs what it returns.
func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	m, cmd := h.m.Update(msg)
	h.m = m
	h.exec(cmd)
}

// exec runs a command and handles its message.
func (h *harness) exec(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	select {
	case msg := <-ch:
		h.handle(msg)
	case <-time.After(blockAfter):
		go func() { h.late <- <-ch }()
	}
}

func (h *harness) handle(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.exec(c)
		}
	case tea.QuitMsg:
		h.quit = true
	default:
		h.send(msg)
	}
}

// settle handles the late messages that are there.
func (h *harness) settle() {
	for {
		select {
		case msg := <-h.late:
			h.handle(msg)
		default:
			return
		}
	}
}

// until handles late messages until cond holds, for up to 10s.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.settle()
		if cond() {
			return
		}
		select {
		case msg := <-h.late:
			h.handle(msg)
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; the screen:\n%s", what, h.view())
		}
	}
}

// key presses a key: "enter", "tab", "ctrl+c", or runes like "q".
func (h *harness) key(k string) {
	h.t.Helper()
	h.send(keyMsg(k))
	h.settle()
}

func (h *harness) keys(ks ...string) {
	h.t.Helper()
	for _, k := range ks {
		h.key(k)
	}
}

// typeText types runes one at a time.
func (h *harness) typeText(s string) {
	h.t.Helper()
	for _, r := range s {
		h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	h.settle()
}

func keyMsg(k string) tea.KeyMsg {
	types := map[string]tea.KeyType{
		"enter": tea.KeyEnter, "tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab, "ctrl+c": tea.KeyCtrlC,
		"ctrl+r": tea.KeyCtrlR, "backspace": tea.KeyBackspace, "esc": tea.KeyEsc, "up": tea.KeyUp,
		"down": tea.KeyDown, "pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp,
	}
	if t, ok := types[k]; ok {
		return tea.KeyMsg{Type: t}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

func (h *harness) model() Model { return h.m.(Model) }

func (h *harness) view() string { return h.m.View() }

// requireView fails unless the screen contains every want.
func (h *harness) requireView(want ...string) {
	h.t.Helper()
	v := h.view()
	for _, w := range want {
		if !strings.Contains(v, w) {
			h.t.Fatalf("the screen lacks %q:\n%s", w, v)
		}
	}
}

func (h *harness) refuseView(unwanted ...string) {
	h.t.Helper()
	v := h.view()
	for _, w := range unwanted {
		if strings.Contains(v, w) {
			h.t.Fatalf("the screen shows %q:\n%s", w, v)
		}
	}
}

// selectedName is the base name of the files screen's selection.
func (h *harness) selectedName() string {
	e, ok := h.model().files.selected()
	if !ok {
		return ""
	}
	return path.Base(e.Name)
}

var errBoom = errors.New("boom")
