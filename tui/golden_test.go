package tui

// Golden files of every screen at 80x24 and 120x40, on repositories the
// test builds with the real node: a plain one, and a "cluster" one whose
// only peer is pinned, offline, so every chunk has 1 copy of 2. The
// program runs under teatest; the golden is the final model's View.
//
//	go test ./tui/ -run TUIGolden -update    rewrites testdata/TestTUIGolden/
//
// Determinism: the colour profile is Ascii (TestMain), so goldens are plain
// text; time.Local is UTC. The node runs on a fixed clock (node.Options.Now),
// so versions, changes and GC runs carry fixed times, and being far in the
// past, every relative time the views print ("3s ago") becomes a date; the
// files' mtimes are set with os.Chtimes. The node key is made from a fixed
// seed, so node IDs (shown in the feed and the peers table) are fixed. One
// value comes from the machine: the free space of this node's disk, which
// goldenBackend pins. Nothing is normalized after rendering.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/transfer"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	// The progress bars (bubbles/progress) ask termenv's default output.
	termenv.SetDefaultOutput(termenv.NewOutput(os.Stdout, termenv.WithProfile(termenv.Ascii)))
	time.Local = time.UTC
	os.Exit(m.Run())
}

// goldenClock is the fixed time of the golden repositories.
var goldenClock = time.Date(2025, 1, 15, 9, 45, 0, 0, time.UTC)

// fixedKey returns a PEM node key made from seed, as transfer.Identity
// saves one.
func fixedKey(t *testing.T, seed byte) []byte {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed ^ byte(i*31)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(s))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// writeFile writes data with a fixed mtime.
func writeFile(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func randBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// buildRepo makes a repository in a temporary directory: a few files in a
// tree, one with four versions (keep-versions 3, so one was pruned and its
// chunk is garbage pending), and a GC run in the history. With
// cluster, a peer is pinned that never answers: replicas is 2 and every
// chunk has 1 copy.
func buildRepo(t *testing.T, cluster bool) *node.Node {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Init adopts a key it finds.
	if err := os.WriteFile(filepath.Join(dir, "node.key"), fixedKey(t, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := node.Init(ctx, dir, node.InitOptions{}, node.Options{Now: func() time.Time { return goldenClock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for _, kv := range [][2]string{{"name", "home"}, {"keep-versions", "3"}} {
		if err := n.ConfigSet(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	mtime := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	put := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(src, filepath.FromSlash(name))
		writeFile(t, p, data, mtime)
		mtime = mtime.Add(time.Hour)
		// One file per put: the change log's order is the order here.
		res, err := n.Put(ctx, []string{p}, node.PutOptions{As: names.Must(name)})
		if err != nil || len(res.Failed) > 0 {
			t.Fatalf("put %s: %v %v", name, err, res.Failed)
		}
	}
	put("photos/2024/beach.jpg", randBytes(300<<10, 1))
	put("photos/2024/city.jpg", randBytes(200<<10, 2))
	put("photos/cat.png", randBytes(90<<10, 3))
	put("docs/readme.txt", bytes.Repeat([]byte("loft keeps your files safe.\n"), 200))
	for i := 1; i <= 4; i++ {
		put("notes.txt", fmt.Appendf(randBytes(2000, byte(10+i)), "version %d\n", i))
	}
	put("music/song.flac", randBytes(1<<20+12345, 4))
	// A run for the history (previews are not recorded): within the
	// grace period, it removes nothing.
	if _, err := n.GC(ctx, node.GCOptions{Grace: -1}); err != nil {
		t.Fatal(err)
	}
	if cluster {
		id, err := transfer.ParseIdentity(fixedKey(t, 2))
		if err != nil {
			t.Fatal(err)
		}
		err = n.AddPeer(ctx, catalog.Peer{ID: id.ID().String(), Name: "offsite", Addrs: []string{"127.0.0.1:9"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// goldenBackend is the real node with the one value that comes from the
// machine pinned (the free space of its disk), and counts calls in flight
// so the test knows when the dashboard has everything it asked for.
type goldenBackend struct {
	*node.Node
	inflight atomic.Int64
}

func (g *goldenBackend) track() func() {
	g.inflight.Add(1)
	return func() { g.inflight.Add(-1) }
}

func (g *goldenBackend) Status(ctx context.Context) (node.Status, error) {
	defer g.track()()
	st, err := g.Node.Status(ctx)
	st.Node.Free = 100 << 30
	return st, err
}

func (g *goldenBackend) Stat(ctx context.Context) (node.StatResult, error) {
	defer g.track()()
	return g.Node.Stat(ctx)
}

func (g *goldenBackend) List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	defer g.track()()
	return g.Node.List(ctx, prefix, opts, fn)
}

func (g *goldenBackend) Versions(ctx context.Context, name names.Name) ([]catalog.Version, error) {
	defer g.track()()
	return g.Node.Versions(ctx, name)
}

func (g *goldenBackend) Copies(ctx context.Context, name names.Name) (int, error) {
	defer g.track()()
	return g.Node.Copies(ctx, name)
}

func (g *goldenBackend) GCRuns(ctx context.Context, limit int) ([]catalog.GCRun, error) {
	defer g.track()()
	return g.Node.GCRuns(ctx, limit)
}

func (g *goldenBackend) LastChanges(ctx context.Context, limit int) ([]catalog.Change, error) {
	defer g.track()()
	return g.Node.LastChanges(ctx, limit)
}

func (g *goldenBackend) Events(ctx context.Context) (<-chan node.Event, error) {
	defer g.track()()
	return g.Node.Events(ctx)
}

// recorder wraps the dashboard for teatest and keeps what the test needs
// to know whether it has settled: the last view, and whether any load is
// still outstanding. View runs on the program's goroutine, after Update.
type recorder struct {
	m  Model
	st *recState
}

type recState struct {
	mu      sync.Mutex
	view    string
	ready   bool
	changed time.Time
}

func (r recorder) Init() tea.Cmd { return r.m.Init() }

func (r recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := r.m.Update(msg)
	r.m = m.(Model)
	return r, cmd
}

func (r recorder) View() string {
	v := r.m.View()
	ready := r.m.loaded && !r.m.files.loading
	for _, e := range r.m.files.visible(r.m.bodyHeight()) {
		if _, ok := r.m.files.copies[e.Name]; !ok && !e.Dir {
			ready = false
		}
	}
	if r.m.screen == screenFiles && r.m.files.entries == nil {
		ready = false
	}
	r.st.mu.Lock()
	if v != r.st.view {
		r.st.view, r.st.changed = v, time.Now()
	}
	r.st.ready = ready
	r.st.mu.Unlock()
	return v
}

// goldenView runs the dashboard on b at w x h, presses keys, waits until
// it has settled and cond holds, quits, and returns the final view.
func goldenView(t *testing.T, b *goldenBackend, w, h int, cond func(string) bool, keys ...string) string {
	t.Helper()
	st := &recState{}
	rec := recorder{m: New(t.Context(), b, Options{Refresh: time.Hour}), st: st}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(w, h))
	settle := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st.mu.Lock()
			v, ready, quiet := st.view, st.ready, time.Since(st.changed)
			st.mu.Unlock()
			if ready && b.inflight.Load() == 0 && quiet > 200*time.Millisecond && (cond == nil || cond(v)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the dashboard did not settle (%s); it shows:\n%s", what, v)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	settle("the first screen", nil)
	for i, k := range keys {
		tm.Send(keyMsg(k))
		var c func(string) bool
		if i == len(keys)-1 {
			c = cond
		}
		settle("after "+k, c)
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(recorder)
	return final.m.View()
}

func TestTUIGolden(t *testing.T) {
	repos := []struct {
		name    string
		cluster bool
	}{{"plain", false}, {"cluster", true}}
	for _, r := range repos {
		t.Run(r.name, func(t *testing.T) {
			b := &goldenBackend{Node: buildRepo(t, r.cluster)}
			type shot struct {
				name string
				keys []string
				want string // text the screen must show before it is taken
				only [2]int // a single size, else both
			}
			shots := []shot{
				{name: "overview", want: "Last GC"},
				{name: "files", keys: []string{"2"}, want: "notes.txt"},
				{name: "peers", keys: []string{"3"}, want: "Replication"},
				{name: "gc", keys: []string{"4"}, want: "History"},
				{name: "activity", keys: []string{"5"}, want: "Activity"},
				// Deeper states, at the smallest size.
				{name: "files-photos", keys: []string{"2", "down", "down", "down", "enter"}, want: "2024/", only: [2]int{80, 24}},
				{name: "versions", keys: []string{"2", "down", "down", "v"}, want: "Versions of notes.txt", only: [2]int{80, 24}},
				{name: "gc-preview", keys: []string{"4", "p"}, want: "a run now would", only: [2]int{80, 24}},
				{name: "help", keys: []string{"2", "?"}, want: "previous screen", only: [2]int{80, 24}},
			}
			for _, s := range shots {
				for _, sz := range [][2]int{{80, 24}, {120, 40}} {
					if s.only != ([2]int{}) && s.only != sz {
						continue
					}
					t.Run(fmt.Sprintf("%s_%dx%d", s.name, sz[0], sz[1]), func(t *testing.T) {
						want := s.want
						v := goldenView(t, b, sz[0], sz[1], func(v string) bool { return strings.Contains(v, want) }, s.keys...)
						checkSize(t, v, sz[0], sz[1])
						teatest.RequireEqualOutput(t, []byte(v+"\n"))
					})
				}
			}
		})
	}
}
