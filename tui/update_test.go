package tui

// Update-level tests of every screen: synthetic key and window messages,
// the model's own messages fed back by the harness (fake_test.go), and a
// fake backend that records what the dashboard did.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/transfer"
)

func TestTUIScreenSwitching(t *testing.T) {
	h := newHarness(t, newFake(), 100, 30)
	markers := []string{"at risk", "NAME", "Peers (3)", "Garbage pending", "Activity, newest first"}
	check := func(screen int) {
		t.Helper()
		if got := h.model().screen; got != screen {
			t.Fatalf("screen %d, want %d (%s)", got, screen, screenNames[screen])
		}
		h.requireView(markers[screen])
	}
	check(screenOverview)
	for i := 1; i <= screens; i++ {
		h.key("tab")
		check(i % screens)
	}
	h.key("shift+tab")
	check(screenActivity)
	h.key("shift+tab")
	check(screenGC)
	for _, k := range []string{"3", "1", "5", "2", "4"} {
		h.key(k)
		check(int(k[0] - '1'))
	}
	// The tabs name every screen at the smallest size.
	h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.requireView("1 Overview", "2 Files", "3 Peers", "4 GC", "5 Activity")
}

func TestTUIHelpToggle(t *testing.T) {
	h := newHarness(t, newFake(), 120, 40)
	h.requireView("? more keys")
	h.refuseView("shift+tab")
	h.key("?")
	if !h.model().help.ShowAll {
		t.Fatal("? did not open the full help")
	}
	h.requireView("shift+tab", "previous screen", "ctrl+r", "reload")
	h.key("?")
	h.refuseView("previous screen")
}

func TestTUIReload(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, 80, 24)
	before := f.statusCalls
	h.key("ctrl+r")
	if f.statusCalls <= before {
		t.Fatal("ctrl+r did not read the status again")
	}
}

func TestTUIQuit(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		t.Run(k, func(t *testing.T) {
			h := newHarness(t, newFake(), 80, 24)
			_, cmd := h.m.Update(keyMsg(k))
			if cmd == nil {
				t.Fatalf("%s returned no command", k)
			}
			if _, ok := cmd().(tea.QuitMsg); !ok {
				t.Fatalf("%s: the command's message is not tea.QuitMsg", k)
			}
		})
	}
	t.Run("q types into the filter, ctrl+c still quits", func(t *testing.T) {
		h := newHarness(t, newFake(), 80, 24)
		h.keys("2", "/")
		h.key("q")
		if h.quit {
			t.Fatal("q quit while the filter took text")
		}
		if got := h.model().files.filter; got != "q" {
			t.Fatalf("filter %q, want q", got)
		}
		h.key("ctrl+c")
		if !h.quit {
			t.Fatal("ctrl+c did not quit while filtering")
		}
	})
	t.Run("q on every screen", func(t *testing.T) {
		for s := 1; s <= screens; s++ {
			h := newHarness(t, newFake(), 80, 24)
			h.key(fmt.Sprint(s))
			h.key("q")
			if !h.quit {
				t.Fatalf("q did not quit on screen %s", screenNames[s-1])
			}
		}
	})
}

func TestTUIVerdict(t *testing.T) {
	peer := node.PeerStatus{ID: peerID(2), Name: "office", Role: "storage", State: "online"}
	client := node.PeerStatus{ID: peerID(4), Name: "laptop", Role: "client", State: "online"}
	cases := []struct {
		name  string
		peers []node.PeerStatus
		r     node.ReplicationStatus
		tr    *node.Transfer
		live  bool // a serving node feeds the dashboard, and repairs
		want  string
	}{
		{"nothing stored", nil, node.ReplicationStatus{Replicas: 1}, nil, false,
			"Nothing stored yet."},
		{"all safe", []node.PeerStatus{peer}, node.ReplicationStatus{Replicas: 2, Chunks: 10, Bytes: 12<<30 + 400<<20}, nil, false,
			"All 12 GiB have 2 copies"},
		{"at risk with repair ETA", []node.PeerStatus{peer},
			node.ReplicationStatus{Replicas: 2, Chunks: 1000, Bytes: 3 << 30, Below: 340, BelowBytes: 1288490189, UnderRepair: 340},
			&node.Transfer{At: fixedTime, SendRate: 5 << 20}, true,
			"1.2 GiB at risk: 340 chunks have fewer than 2 copies, repairing, about 4 min left"},
		{"at risk, repairing, rate unknown", []node.PeerStatus{peer},
			node.ReplicationStatus{Replicas: 2, Chunks: 1000, Bytes: 3 << 30, Below: 340, BelowBytes: 1288490189, UnderRepair: 340}, nil, true,
			"1.2 GiB at risk: 340 chunks have fewer than 2 copies, repairing"},
		{"at risk, no node serves", []node.PeerStatus{peer},
			node.ReplicationStatus{Replicas: 2, Chunks: 1000, Bytes: 3 << 30, Below: 340, BelowBytes: 1288490189, UnderRepair: 340},
			&node.Transfer{At: fixedTime, SendRate: 5 << 20}, false,
			"1.2 GiB at risk: 340 chunks have fewer than 2 copies; nothing repairs them while no node serves (loft serve)"},
		{"at risk, nobody holds them to repair", []node.PeerStatus{peer},
			node.ReplicationStatus{Replicas: 2, Chunks: 1000, Bytes: 3 << 30, Below: 5, BelowBytes: 5 << 20}, nil, true,
			"5.0 MiB at risk: 5 chunks have fewer than 2 copies"},
		{"unplaced", []node.PeerStatus{peer},
			node.ReplicationStatus{Replicas: 2, Chunks: 1000, Bytes: 3 << 30, Unplaced: 7}, nil, false,
			"0 B at risk: 7 chunks are on no known node"},
		{"a single node without peers", nil, node.ReplicationStatus{Replicas: 1, Chunks: 3, Bytes: 5 << 20}, nil, false,
			"All 5.0 MiB are on this node only: pair another node for a second copy"},
		{"a client is no second copy", []node.PeerStatus{client}, node.ReplicationStatus{Replicas: 1, Chunks: 3, Bytes: 5 << 20}, nil, false,
			"All 5.0 MiB are on this node only: pair another node for a second copy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			f.status.Peers, f.status.Replication, f.status.Transfer = c.peers, c.r, c.tr
			if c.live {
				f.events = make(chan node.Event) // never sends
			}
			h := newHarness(t, f, 120, 40)
			if h.model().live != c.live {
				t.Fatalf("live %v", h.model().live)
			}
			got, _ := h.model().verdict()
			if got != c.want {
				t.Fatalf("verdict %q, want %q", got, c.want)
			}
			// It is the first line under the tabs.
			if line := strings.TrimSpace(strings.Split(h.view(), "\n")[1]); line != c.want {
				t.Fatalf("first line %q, want %q", line, c.want)
			}
		})
	}
	t.Run("before the first status", func(t *testing.T) {
		m := New(t.Context(), newFake(), Options{})
		if got, _ := m.verdict(); got != "Reading the repository…" {
			t.Fatalf("verdict %q", got)
		}
	})
}

func TestTUIOverview(t *testing.T) {
	h := newHarness(t, newFake(), 120, 40)
	h.requireView(
		"4.0 GiB logical, 3.0 GiB stored, dedup 1.33x, 4 objects, 6 versions",
		"garbage pending 12 MiB in 12 chunks (10 MiB reclaimable now)",
		"home (here)", "office", "offsite", "offline",
		"5.0 MiB/s out, 1.0 MiB/s in",
		"removed 3 chunks (3.0 MiB), 1 orphan",
		"never (serve scrubs every scrub-interval)",
	)
	// A client holds no replicas: no disk bar.
	h.refuseView("laptop")
}

func TestTUIOverviewScrub(t *testing.T) {
	f := newFake()
	// loopRecord is unexported: the status comes as a serving node sends it.
	raw := `{"loops":{"scrub":{"at":"2025-02-01T00:00:00Z","result":{"Chunks":1200,"Corrupt":1,"Repaired":1}}}}`
	if err := json.Unmarshal([]byte(raw), &f.status); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, f, 120, 40)
	h.requireView("Last scrub  2025-02-01, 1200 chunks read, 1 corrupt, 1 repaired")
}

func TestTUIFilesTree(t *testing.T) {
	h := newHarness(t, newFake(), 100, 30)
	h.key("2")
	h.requireView("/", "alpha.txt", "beta.bin", "docs/", "gamma.log")
	h.refuseView("report.pdf")
	// The copy counts load for the rows on screen.
	h.until("copy counts", func() bool { return len(h.model().files.copies) == 3 })
	if got := h.model().files.copies["beta.bin"]; got != 1 {
		t.Fatalf("beta.bin copies %d, want 1", got)
	}
	if sel := h.selectedName(); sel != "alpha.txt" {
		t.Fatalf("selected %q", sel)
	}
	h.keys("down", "down")
	if sel := h.selectedName(); sel != "docs" {
		t.Fatalf("selected %q, want docs", sel)
	}
	h.key("enter")
	h.until("the docs listing", func() bool { return !h.model().files.loading })
	h.requireView("report.pdf", "sub/")
	h.refuseView("alpha.txt")
	h.keys("down", "enter")
	h.until("the docs/sub listing", func() bool { return !h.model().files.loading })
	h.requireView("notes.md")
	h.refuseView("report.pdf")
	// Backspace goes up, to the root in the end.
	for i := 0; i < 4 && strings.Trim(h.model().files.dir, "/") != ""; i++ {
		h.key("backspace")
		h.until("a listing", func() bool { return !h.model().files.loading })
	}
	if d := h.model().files.dir; d != "" {
		t.Fatalf("4 backspaces left the screen in %q", d)
	}
	h.requireView("alpha.txt", "docs/")
	// Backspace at the root stays there.
	h.key("backspace")
	h.requireView("alpha.txt")
	// up and k, down and j.
	h.keys("j", "j", "k")
	if sel := h.selectedName(); sel != "beta.bin" {
		t.Fatalf("selected %q, want beta.bin", sel)
	}
}

// Backspace goes up one level per press. The catalog names a directory
// entry with a trailing slash ("docs/"); path.Dir("docs/") is "docs", the
// same directory, unless the slash is dropped when the directory is opened.
func TestTUIFilesBackspaceOneLevel(t *testing.T) {
	h := newHarness(t, newFake(), 100, 30)
	h.keys("2", "down", "down", "enter")
	h.until("docs", func() bool { return !h.model().files.loading })
	h.keys("down", "enter")
	h.until("docs/sub", func() bool { return !h.model().files.loading })
	h.requireView("notes.md")
	h.key("backspace")
	h.until("docs", func() bool { return !h.model().files.loading })
	h.requireView("report.pdf")
	h.key("backspace")
	h.until("the root", func() bool { return !h.model().files.loading })
	h.requireView("alpha.txt")
}

func TestTUIFilesFilter(t *testing.T) {
	h := newHarness(t, newFake(), 100, 30)
	h.keys("2", "/")
	h.requireView("filter: ")
	h.typeText("a")
	// Names, not paths: docs/ has no "a".
	if got := entryNames(h.model().files.shown()); !slices.Equal(got, []string{"alpha.txt", "beta.bin", "gamma.log"}) {
		t.Fatalf("filter a shows %v", got)
	}
	h.typeText("L")
	if got := entryNames(h.model().files.shown()); !slices.Equal(got, []string{"alpha.txt"}) {
		t.Fatalf("filter aL shows %v", got)
	}
	h.requireView("alpha.txt")
	h.refuseView("beta.bin", "gamma.log")
	h.key("enter") // keeps the filter, leaves the field
	if h.model().files.filtering {
		t.Fatal("enter did not close the filter field")
	}
	h.requireView(`filter "aL": 1 of 4`)
	// Keys act again: v shows the versions of the one file shown.
	h.key("v")
	h.until("versions", func() bool { return h.model().files.versions != nil })
	h.requireView("Versions of alpha.txt")
	h.key("esc")
	// esc in the field clears the filter.
	h.keys("/", "esc")
	if got := len(h.model().files.shown()); got != 4 {
		t.Fatalf("after esc %d entries shown, want 4", got)
	}
	// A filter that matches nothing.
	h.key("/")
	h.typeText("zzz")
	h.requireView("(empty)")
	h.key("backspace")
	if got := h.model().files.filter; got != "zz" {
		t.Fatalf("backspace in the filter field left %q", got)
	}
}

func entryNames(es []catalog.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, strings.TrimSuffix(e.Name, "/"))
	}
	return out
}

func TestTUIFilesDelete(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, 100, 30)
	h.keys("2", "down")
	if sel := h.selectedName(); sel != "beta.bin" {
		t.Fatalf("selected %q", sel)
	}
	removed := func() []string { return f.snapshot(func() []string { return f.removed }) }
	for _, no := range []string{"n", "esc", "x"} {
		h.key("d")
		h.requireView("delete beta.bin? (y/n")
		if len(removed()) != 0 {
			t.Fatal("d removed before confirmation")
		}
		h.key(no)
		if len(removed()) != 0 {
			t.Fatalf("%s after d removed", no)
		}
		h.refuseView("delete beta.bin?")
		// The answer was taken by the question, not by the screen.
		if h.model().screen != screenFiles {
			t.Fatal("the answer switched screens")
		}
	}
	h.keys("d", "y")
	h.until("the listing with beta.bin deleted", func() bool {
		for _, e := range h.model().files.entries {
			if e.Name == "beta.bin" {
				return e.Head.Deleted
			}
		}
		return true
	})
	if got := removed(); !slices.Equal(got, []string{"beta.bin recursive=false"}) {
		t.Fatalf("removed %v", got)
	}
	h.requireView("deleted beta.bin (1 objects")
	// A directory goes with everything below it; enter confirms too. The
	// deleted beta.bin stays listed (it can be restored), docs/ follows it.
	h.key("down")
	if sel := h.selectedName(); sel != "docs" {
		t.Fatalf("selected %q", sel)
	}
	h.keys("d", "enter")
	h.until("a second removal", func() bool { return len(removed()) == 2 })
	if got := removed()[1]; got != "docs recursive=true" && got != "docs/ recursive=true" {
		t.Fatalf("removed %q", got)
	}
}

// A deleted object cannot be restored from the dashboard: the listing
// leaves deletions out (files.go load: catalog.ListOptions{}), so the
// "(deleted)" rows files.go draws never appear and there is nothing to
// press v on.
func TestTUIFilesRestoreDeleted(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, 100, 30)
	h.keys("2", "down", "d", "y")
	h.until("the listing", func() bool { return len(f.snapshot(func() []string { return f.removed })) == 1 })
	h.settle()
	h.requireView("beta.bin (deleted)")
}

func TestTUIFilesVersionsRestore(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, 100, 30)
	h.key("2")
	// enter on a file shows its versions, as v does.
	h.key("enter")
	h.until("versions", func() bool { return h.model().files.versions != nil })
	h.requireView("Versions of alpha.txt", "VERSION", "current")
	if got := len(h.model().files.versions); got != 3 {
		t.Fatalf("%d versions", got)
	}
	h.key("backspace")
	h.requireView("NAME")
	h.key("v")
	h.until("versions", func() bool { return h.model().files.versions != nil })
	h.keys("down", "down", "down") // stops at the oldest
	h.key("up")
	if got := h.model().files.vcursor; got != 1 {
		t.Fatalf("version cursor %d", got)
	}
	h.key("r")
	h.until("restore", func() bool { return len(f.snapshot(func() []string { return f.restored })) == 1 })
	if got := f.snapshot(func() []string { return f.restored }); got[0] != "alpha.txt@2" {
		t.Fatalf("restored %v, want alpha.txt@2", got)
	}
	h.until("the notice", func() bool { return strings.Contains(h.view(), "restored alpha.txt") })
	h.requireView("restored alpha.txt: version 4 has the content of version 2")

	// A deletion has nothing to restore.
	f.mu.Lock()
	o, _ := f.object("gamma.log")
	o.versions = append([]catalog.Version{{Name: "gamma.log", Num: 2, Deleted: true, Created: fixedTime}}, o.versions...)
	f.mu.Unlock()
	h.keys("down", "down", "down") // gamma.log
	if sel := h.selectedName(); sel != "gamma.log" {
		t.Fatalf("selected %q", sel)
	}
	h.key("v")
	h.until("versions", func() bool { return h.model().files.versions != nil })
	h.requireView("deleted, current")
	h.key("r")
	h.requireView("a deletion has no content to restore")
	if got := f.snapshot(func() []string { return f.restored }); len(got) != 1 {
		t.Fatalf("restored %v", got)
	}
}

func TestTUIFilesGet(t *testing.T) {
	f := newFake()
	f.getGate = make(chan struct{})
	h := newHarness(t, f, 100, 30)
	h.keys("2", "down", "down", "g") // docs/
	h.requireView("get to directory: ")
	h.key("enter") // no destination: nothing to do
	if h.model().files.getting || len(f.snapshot(func() []string { return f.gets })) != 0 {
		t.Fatal("enter without a destination started a get")
	}
	h.key("g")
	h.key("esc")
	if len(f.snapshot(func() []string { return f.gets })) != 0 || h.model().files.getting {
		t.Fatal("esc did not cancel the get")
	}
	h.key("g")
	h.typeText("/tmp/out")
	h.key("enter")
	h.until("the progress", func() bool { return h.model().files.got != nil && h.model().files.got.bytes == 1024 })
	h.requireView("getting docs", "1.0 KiB/2.0 KiB")
	if got := f.snapshot(func() []string { return f.gets }); len(got) != 1 || strings.TrimPrefix(strings.TrimPrefix(got[0], "docs"), "/") != " -> /tmp/out" {
		t.Fatalf("gets %v", got)
	}
	// A second g while one runs asks nothing.
	h.key("g")
	if h.model().files.getting {
		t.Fatal("g asked for a second get while one runs")
	}
	close(f.getGate)
	h.until("the end of the get", func() bool { return strings.Contains(h.view(), ": 2 files, 2.0 KiB") })
	h.requireView("got docs")
}

func TestTUIGC(t *testing.T) {
	f := newFake()
	f.gcGate = make(chan struct{})
	h := newHarness(t, f, 100, 30)
	h.key("4")
	h.requireView("Garbage pending", "12 chunks, 12 MiB, oldest unreferenced since 2025-02-25",
		"10 chunks (10 MiB) past the grace period", "press p to see what a run would remove",
		"2025-03-01 09:30")
	h.key("p")
	h.until("the preview", func() bool { return h.model().gcScreen.preview != nil })
	h.requireView("10 chunks (10 MiB) and 1 orphan file (4.0 KiB)")
	gcs := func() []node.GCOptions {
		f.mu.Lock()
		defer f.mu.Unlock()
		return append([]node.GCOptions(nil), f.gcs...)
	}
	if g := gcs(); len(g) != 1 || !g[0].DryRun || g[0].Grace != -1 {
		t.Fatalf("preview ran GC with %+v, want DryRun and the configured grace", g)
	}
	h.key("r")
	h.until("progress", func() bool { return h.model().gcScreen.running != nil && h.model().gcScreen.running.done == 4 })
	h.requireView("running: sweep", " 40% 4")
	if g := gcs(); len(g) != 2 || g[1].DryRun || g[1].Grace != -1 || g[1].Progress == nil {
		t.Fatalf("run with %+v, want not DryRun, configured grace, progress", g)
	}
	// r again while it runs starts nothing.
	h.key("r")
	if got := len(gcs()); got != 2 {
		t.Fatalf("%d GC calls", got)
	}
	close(f.gcGate)
	h.until("the end of the run", func() bool { return h.model().gcScreen.running == nil && len(h.model().gcScreen.runs) == 2 })
	h.requireView("gc removed 10 chunks (10 MiB) and 1 orphan file")
	h.refuseView("running:", "a run now would remove")
}

func TestTUIPeers(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, 120, 40)
	h.key("3")
	h.requireView("Peers (3)", peerID(2)[:8], "office", "offsite", "offline", "laptop", "client", "1.23ms",
		"860 of 1200 chunks have 2 copies", "340 chunks (1.2 GiB) below; nothing copies them while no node serves",
		"sending 5.0 MiB/s, receiving 1.0 MiB/s")
	// Invite.
	h.key("i")
	h.until("the token", func() bool { return h.model().peers.token != "" })
	f.mu.Lock()
	invites := f.invites
	f.mu.Unlock()
	if got := invites; len(got) != 1 || !slices.Equal(got[0], []string{"192.0.2.9:7070"}) {
		t.Fatalf("invites %v", got)
	}
	tok := h.model().peers.token
	if _, err := transfer.ParseInvite(tok); err != nil {
		t.Fatalf("the token shown does not parse: %v", err)
	}
	h.requireView("invite (valid 1h, once), on the other node: loft join TOKEN", tok[:60])
	// Remove: asks, n does nothing, y removes the selected peer.
	h.key("x")
	h.requireView("remove peer " + peerID(2)[:8] + " office? it will no longer be trusted (y/n)")
	h.key("n")
	h.refuseView("no longer be trusted")
	if len(f.snapshot(func() []string { return f.removedPeer })) != 0 {
		t.Fatal("n removed the peer")
	}
	h.keys("down", "x", "y")
	h.until("the removal", func() bool { return len(f.snapshot(func() []string { return f.removedPeer })) == 1 })
	if got := f.snapshot(func() []string { return f.removedPeer }); got[0] != peerID(3) {
		t.Fatalf("removed %v, want %s", got, peerID(3))
	}
	h.until("the notice", func() bool { return strings.Contains(h.view(), "removed peer "+peerID(3)[:8]) })
	// The cursor stops at the last peer.
	h.keys("down", "down", "down")
	if got := h.model().peers.cursor; got != 2 {
		t.Fatalf("cursor %d", got)
	}
}

func TestTUIPeersNone(t *testing.T) {
	f := newFake()
	f.status.Peers = nil
	h := newHarness(t, f, 80, 24)
	h.keys("3", "x")
	h.refuseView("no longer be trusted")
	h.requireView("Peers (0)", "no peers: press i for an invite token")
	if h.model().peers.confirm {
		t.Fatal("x asked to remove a peer that is not there")
	}
}

func TestTUIInviteWithoutAddress(t *testing.T) {
	f := newFake()
	var m tea.Model = New(t.Context(), f, Options{Refresh: time.Hour})
	m, _ = m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m, _ = m.Update(statusMsg{status: f.status, stat: f.stat})
	m, _ = m.Update(keyMsg("3"))
	m, cmd := m.Update(keyMsg("i"))
	msg := cmd()
	if im, ok := msg.(inviteMsg); !ok || im.err == nil || !strings.Contains(im.err.Error(), "no address") {
		t.Fatalf("i without an address gave %#v", msg)
	}
	m, cmd = m.Update(msg)
	m, _ = m.Update(cmd()) // the notice
	if v := m.View(); !strings.Contains(v, "error: invite: no address") {
		t.Fatalf("the error is not shown:\n%s", v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.invites) != 0 {
		t.Fatal("Invite was called without addresses")
	}
}

func TestTUIActivity(t *testing.T) {
	h := newHarness(t, newFake(), 100, 30)
	h.key("5")
	h.requireView("Activity, newest first")
	v := h.view()
	a := strings.Index(v, "paired with "+peerID(2)[:11])
	b := strings.Index(v, "deleted old.txt ("+peerID(1)[:8]+")")
	c := strings.Index(v, "stored alpha.txt, version 1 ("+peerID(1)[:8]+")")
	if a < 0 || b < 0 || c < 0 || !(a < b && b < c) {
		t.Fatalf("the feed is not the changes newest first:\n%s", v)
	}
	h.requireView("03-01 10:29:00")
}

func TestTUIEventStream(t *testing.T) {
	f := newFake()
	f.events = make(chan node.Event, 10)
	h := newHarness(t, f, 120, 40)
	h.until("live", func() bool { return h.model().live })
	h.requireView("live: following the serving node")
	// A status event updates the overview.
	st := f.status
	st.Replication.Below, st.Replication.BelowBytes, st.Replication.UnderRepair = 0, 0, 0
	st.Transfer = &node.Transfer{At: fixedTime.Add(time.Second), SendRate: 100}
	f.events <- node.Event{Kind: "status", At: fixedTime, Status: &st}
	h.until("the new verdict", func() bool { return strings.Contains(h.view(), "All 3.0 GiB have 2 copies") })
	st2 := st
	st2.Transfer = &node.Transfer{At: fixedTime.Add(2 * time.Second), SendRate: 800}
	f.events <- node.Event{Kind: "status", At: fixedTime, Status: &st2}
	h.until("a second rate sample", func() bool { return len(h.model().rates) == 3 })
	if r := h.model().rates; r[1] != 100 || r[2] != 800 {
		t.Fatalf("rates %v", r)
	}
	h.requireView("█▁▁") // 5 MiB/s from the first read, then 100 and 800 B/s
	// Changes and warnings go to the feed.
	f.events <- node.Event{Kind: "change", Change: &catalog.Change{Seq: 10, Origin: peerID(2), At: fixedTime, Op: "put", Name: "new.txt", Version: 1}}
	f.events <- node.Event{Kind: "log", At: fixedTime, Level: "WARN", Msg: "peer offsite unreachable"}
	h.until("the feed", func() bool { return len(h.model().feed) == 5 })
	h.key("5")
	h.requireView("stored new.txt, version 1 ("+peerID(2)[:8]+")", "peer offsite unreachable")
	// An old change is not shown twice.
	f.events <- node.Event{Kind: "change", Change: &catalog.Change{Seq: 3, At: fixedTime, Op: "put", Name: "again.txt"}}
	f.events <- node.Event{Kind: "log", At: fixedTime, Msg: "marker"}
	h.until("the marker", func() bool { return len(h.model().feed) == 6 })
	h.refuseView("again.txt")
	// The stream ends: back to reading the repository.
	before := f.statusCalls
	close(f.events)
	h.until("the fallback", func() bool { return !h.model().live })
	h.requireView("the serving node went away: reading the repository directly")
	h.until("a direct read", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.statusCalls > before
	})
}

func TestTUIDirectMode(t *testing.T) {
	h := newHarness(t, newFake(), 120, 40)
	if h.model().live {
		t.Fatal("live without a serving node")
	}
	h.requireView("reading the repository directly (no node is serving it)")
}

func TestTUIErrorLine(t *testing.T) {
	h := newHarness(t, newFake(), 80, 24)
	m := h.model()
	m.err = fmt.Errorf("disk\non fire:\t%w", errBoom)
	h.m = m
	h.requireView("error: disk on fire: boom")
	h.refuseView("reading the repository directly")
}

// An action's error must stay on screen long enough to be read. noticeMsg
// sets m.err and asks for a refresh; the statusMsg of that refresh (and of
// every tick) sets m.err = nil (tui.go, Update, case statusMsg), so a
// failed delete, restore, get, gc or invite is shown for milliseconds.
func TestTUIActionErrorStays(t *testing.T) {
	h := newHarness(t, newFake(), 80, 24)
	h.send(noticeMsg{err: fmt.Errorf("delete x: %w", errBoom)})
	h.settle()
	h.requireView("error: delete x: boom")
}

// Every screen, in every state that changes its layout, fills exactly the
// window and no line is wider than it.
func TestTUILayout(t *testing.T) {
	for _, sz := range [][2]int{{80, 24}, {100, 30}, {120, 40}, {200, 60}, {40, 12}} {
		for _, state := range []struct {
			name string
			keys []string
		}{
			{"overview", []string{"1"}},
			{"overview full help", []string{"1", "?"}},
			{"files", []string{"2"}},
			{"files full help", []string{"2", "?"}},
			{"files filter", []string{"2", "/", "a"}},
			{"files confirm", []string{"2", "down", "d"}},
			{"files get", []string{"2", "g"}},
			{"files dir", []string{"2", "down", "down", "enter"}},
			{"versions", []string{"2", "v"}},
			{"peers", []string{"3"}},
			{"peers confirm", []string{"3", "x"}},
			{"peers invite", []string{"3", "i"}},
			{"gc", []string{"4"}},
			{"gc preview", []string{"4", "p"}},
			{"activity", []string{"5"}},
		} {
			t.Run(fmt.Sprintf("%dx%d/%s", sz[0], sz[1], state.name), func(t *testing.T) {
				h := newHarness(t, newFake(), sz[0], sz[1])
				h.keys(state.keys...)
				time.Sleep(5 * time.Millisecond)
				h.settle()
				checkSize(t, h.view(), sz[0], sz[1])
			})
		}
	}
	t.Run("resize", func(t *testing.T) {
		h := newHarness(t, newFake(), 200, 60)
		h.key("2")
		for _, sz := range [][2]int{{80, 24}, {150, 50}, {81, 25}, {120, 40}} {
			h.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			checkSize(t, h.view(), sz[0], sz[1])
		}
	})
	t.Run("too small", func(t *testing.T) {
		h := newHarness(t, newFake(), 19, 10)
		if got := h.view(); got != "loft: window too small" {
			t.Fatalf("view %q", got)
		}
	})
}

func checkSize(t *testing.T, v string, w, h int) {
	t.Helper()
	lines := strings.Split(v, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d:\n%s", len(lines), h, v)
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, lw, w, l)
		}
	}
}

// What matters on each screen must be there at 80x24, not cut off by the
// right edge ("…").
func TestTUIFitsAt80(t *testing.T) {
	t.Run("overview: the offline peer", func(t *testing.T) {
		h := newHarness(t, newFake(), 80, 24)
		h.requireView("offsite (offline)", "10 GiB free")
	})
	t.Run("peers: the invite token", func(t *testing.T) {
		h := newHarness(t, newFake(), 80, 24)
		h.keys("3", "i")
		h.until("the token", func() bool { return h.model().peers.token != "" })
		tok := h.model().peers.token
		flat := strings.ReplaceAll(strings.ReplaceAll(h.view(), "\n", ""), " ", "")
		if !strings.Contains(flat, tok) {
			t.Fatalf("the token %s is not on the screen:\n%s", tok, h.view())
		}
	})
	t.Run("help: quit and more keys on every screen", func(t *testing.T) {
		for s := 1; s <= screens; s++ {
			h := newHarness(t, newFake(), 80, 24)
			h.key(fmt.Sprint(s))
			h.requireView("? more keys", "q quit")
		}
	})
	t.Run("gc: the preview", func(t *testing.T) {
		f := newFake()
		f.gcResult.Chunks, f.gcResult.Bytes, f.gcResult.Orphans = 340, 1288490189, 3
		h := newHarness(t, f, 80, 24)
		h.keys("4", "p")
		h.until("the preview", func() bool { return h.model().gcScreen.preview != nil })
		h.requireView("and 3 orphan files (4.0 KiB)")
	})
}

// The cursor must stay on screen when the full help takes lines from the
// body: files.go clampOffset is given m.bodyHeight() (height-4), which
// ignores the help's height, while View draws height-tabs-help-1 lines.
func TestTUIFilesCursorVisibleWithFullHelp(t *testing.T) {
	f := newFake()
	f.objects = nil
	for i := range 40 {
		f.objects = append(f.objects, fakeObject{name: fmt.Sprintf("f%02d", i), copies: 2,
			versions: []catalog.Version{{Num: 1, MTime: fixedTime, Created: fixedTime}}})
	}
	h := newHarness(t, f, 80, 24)
	h.keys("2", "?")
	for i := range 16 {
		h.key("down")
		if sel := h.selectedName(); !strings.Contains(h.view(), sel+" ") {
			t.Fatalf("after %d downs the selection %s is off screen:\n%s", i+1, sel, h.view())
		}
	}
}

// Without colours (NO_COLOR, TERM=vt100, screen, dumb: termenv's Ascii
// profile) lipgloss drops bold and reverse too. The selected row has a
// pointer for that; the current tab must show as well.
func TestTUIMonochromeSelection(t *testing.T) {
	h := newHarness(t, newFake(), 100, 30)
	h.key("2")
	h.requireView("> alpha.txt")
	before := h.view()
	h.key("down")
	if h.view() == before {
		t.Fatal("moving the cursor does not change the screen without colours")
	}
	h.requireView("> beta.bin", "  alpha.txt")
	h.keys("3")
	h.requireView("> " + peerID(2)[:8])
	h.keys("2", "v")
	h.until("versions", func() bool { return h.model().files.versions != nil })
	h.requireView("Versions of beta.bin", ">       1 ")
}

func TestTUIMonochromeTab(t *testing.T) {
	h := newHarness(t, newFake(), 100, 30)
	first := strings.Split(h.view(), "\n")[0]
	h.key("3")
	if tabs := strings.Split(h.view(), "\n")[0]; tabs == first {
		t.Fatalf("the tab line does not say which screen is shown: %q", tabs)
	}
}
