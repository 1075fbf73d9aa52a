package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/tui"
)

// The dashboard's figures: time to the first full screen, and the time from
// a keystroke to the finished redraw, on a repository of many small objects.
const (
	tuiWidth, tuiHeight = 120, 40
	tuiFirstTarget      = time.Second
	tuiRedrawTarget     = 50 * time.Millisecond
	tuiKeys             = 200 // keystrokes per redraw figure
	tuiLayout           = 1   // bump when the generated tree changes
	tuiCompleteFile     = "bench-complete"
)

// tuiCaches are the repositories the tui section keeps in the scratch
// directory between runs (the full size and -quick).
var tuiCaches = []string{"tui-100k", "tui-10k"}

// cleanScratch empties the scratch directory, but keeps the tui section's
// cached repositories.
func cleanScratch(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if slices.Contains(tuiCaches, e.Name()) && e.IsDir() {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// tui measures the dashboard in this process, through the real node API on
// a repository of 100,000 objects: half of them in one directory (big/, a
// long file list), half nested two levels deep (nested/dN/eN/).
func (b *bench) tui(ctx context.Context, _ sizes, _ *limits, _ *e2eState) error {
	objects := 100000
	if b.quick {
		objects = 10000
	}
	fmt.Printf("tui (dashboard in process, %dx%d, %d objects; first screen: medians of %d rounds, each on a freshly opened node):\n",
		tuiWidth, tuiHeight, objects, rounds)
	// A real terminal has colours; without this, lipgloss sees the bench's
	// stdout, may drop every style and would query the terminal.
	lipgloss.SetColorProfile(termenv.ANSI256)
	lipgloss.SetHasDarkBackground(true)

	repo := filepath.Join(b.dir, fmt.Sprintf("tui-%dk", objects/1000))
	if err := b.tuiRepo(ctx, repo, objects); err != nil {
		return fmt.Errorf("build the repository: %w", err)
	}

	// (a) first full screen, and its limit: the reads the overview waits
	// for (Status then Stat, what the dashboard's refresh command does),
	// each on a freshly opened node.
	var first, reads, opens []float64
	var last *tuiRun
	defer func() {
		if last != nil {
			last.close()
		}
	}()
	for r := range rounds {
		status, stat, err := tuiReads(ctx, repo)
		if err != nil {
			return err
		}
		reads = append(reads, status+stat)
		if last != nil {
			last.close()
			last = nil
		}
		run, err := tuiFirstScreen(ctx, repo)
		if err != nil {
			return err
		}
		last = run
		first, opens = append(first, ms(run.first)), append(opens, ms(run.open))
		fmt.Printf("  round %d: node.Open %.1f ms (not counted), first full screen %.1f ms (%d messages); alone: Status %.1f ms + Stat %.1f ms\n",
			r+1, ms(run.open), ms(run.first), run.count, status, stat)
	}
	fm := median(first)
	b.add(row{name: fmt.Sprintf("tui: first full screen, %d objects (%dx%d)", objects, tuiWidth, tuiHeight),
		value: fmt.Sprintf("%.0f ms (max %.0f)", fm, slices.Max(first)), limit: fmt.Sprintf("%.0f ms Status+Stat alone", median(reads)),
		target: "< 1 s", verdict: verdict(fm < ms(tuiFirstTarget), fmt.Sprintf("%.0f%% of target", 100*fm/ms(tuiFirstTarget)))})

	// (b) scrolling the long file list; (c) switching screens.
	if err := b.tuiKeys(last, objects/2); err != nil {
		return err
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tuiRepo builds the repository through node.Init and node.Put, or reuses
// the one a previous run left complete.
func (b *bench) tuiRepo(ctx context.Context, repo string, objects int) error {
	marker := filepath.Join(repo, tuiCompleteFile)
	want := fmt.Sprintf("loft bench tui repository: %d objects, layout %d\n", objects, tuiLayout)
	if got, err := os.ReadFile(marker); err == nil && string(got) == want {
		n, err := node.Open(ctx, repo, node.Options{})
		if err == nil {
			var st node.StatResult
			st, err = n.Stat(ctx)
			n.Close()
			if err == nil && st.Objects == int64(objects) {
				fmt.Printf("  reusing the repository of %d objects cached in %s by an earlier run (delete it to rebuild)\n", objects, repo)
				return nil
			}
		}
		fmt.Printf("  the cached repository in %s is unusable (%v): rebuilding it\n", repo, err)
	}
	if err := os.RemoveAll(repo); err != nil {
		return err
	}
	start := time.Now()
	n, err := node.Init(ctx, repo, node.InitOptions{}, node.Options{})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	src := filepath.Join(b.dir, "tui-src")
	defer os.RemoveAll(src)
	// Two puts of half the objects each, so that at most half of them
	// exist as source files at once.
	half := objects / 2
	leaves := 100 // nested/d0..d9/e0..e9
	parts := []struct {
		name  string
		count int
		path  func(i int) string
	}{
		{"big", half, func(i int) string { return fmt.Sprintf("f%06d.txt", i) }},
		{"nested", objects - half, func(i int) string {
			leaf := i % leaves
			return filepath.Join(fmt.Sprintf("d%d", leaf/10), fmt.Sprintf("e%d", leaf%10), fmt.Sprintf("f%06d.txt", i))
		}},
	}
	seq := 0
	for _, p := range parts {
		if err := os.RemoveAll(src); err != nil {
			return err
		}
		root := filepath.Join(src, p.name)
		wstart := time.Now()
		for i := range p.count {
			if err := writeTinyFile(filepath.Join(root, p.path(i)), seq); err != nil {
				return err
			}
			seq++
		}
		wrote := time.Since(wstart)
		pstart := time.Now()
		res, err := n.Put(ctx, []string{root}, node.PutOptions{})
		if err != nil {
			return err
		}
		if len(res.Failed) > 0 {
			return fmt.Errorf("put %s: %d failed, the first: %v", p.name, len(res.Failed), res.Failed[0])
		}
		took := time.Since(pstart)
		fmt.Printf("  built %s/: %d files written in %v, put in %v (%.0f files/s)\n", p.name, p.count,
			wrote.Round(100*time.Millisecond), took.Round(100*time.Millisecond), float64(res.Files)/took.Seconds())
	}
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	st, err := n.Stat(ctx)
	if err != nil {
		return err
	}
	if st.Objects != int64(objects) {
		return fmt.Errorf("the repository holds %d objects, not %d", st.Objects, objects)
	}
	closed = true
	if err := n.Close(); err != nil {
		return err
	}
	fmt.Printf("  built the repository of %d objects in %v; cached in %s for the next runs\n", objects, time.Since(start).Round(time.Second), repo)
	return os.WriteFile(marker, []byte(want), 0o644)
}

// writeTinyFile writes 1-100 bytes that differ from file to file.
func writeTinyFile(path string, seq int) error {
	r := rand.New(rand.NewPCG(uint64(seq), 7))
	data := make([]byte, 1+r.IntN(100))
	for i := range data {
		data[i] = byte('a' + r.IntN(26))
	}
	err := os.WriteFile(path, data, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
	}
	return err
}

// tuiReads opens the repository and times what the overview waits for:
// Status, then Stat.
func tuiReads(ctx context.Context, repo string) (status, stat float64, err error) {
	n, err := node.Open(ctx, repo, node.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer n.Close()
	start := time.Now()
	if _, err := n.Status(ctx); err != nil {
		return 0, 0, err
	}
	status = ms(time.Since(start))
	start = time.Now()
	if _, err := n.Stat(ctx); err != nil {
		return 0, 0, err
	}
	return status, ms(time.Since(start)), nil
}

// tuiRun is the dashboard driven the way bubbletea drives it: every
// command runs in its own goroutine and its message comes back through
// Update, one at a time, each followed by View.
type tuiRun struct {
	n     *node.Node
	m     tea.Model
	msgs  chan tea.Msg
	done  chan struct{}
	open  time.Duration // node.Open, before the dashboard starts
	first time.Duration // tui.New to the finished first full screen
	count int           // messages through Update
	wait  int           // commands running
}

func (t *tuiRun) start(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	t.wait++
	go func() {
		msg := cmd()
		select {
		case t.msgs <- msg:
		case <-t.done:
		}
	}()
}

// handle takes one command's message: a batch starts its commands, any
// other message goes through Update.
func (t *tuiRun) handle(msg tea.Msg) {
	t.wait--
	if batch, ok := msg.(tea.BatchMsg); ok {
		for _, c := range batch {
			t.start(c)
		}
		return
	}
	if msg == nil {
		return
	}
	t.count++
	var cmd tea.Cmd
	t.m, cmd = t.m.Update(msg)
	t.start(cmd)
}

// next waits for a command's message.
func (t *tuiRun) next(timeout time.Duration) (tea.Msg, error) {
	select {
	case msg := <-t.msgs:
		return msg, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("no message from the dashboard's %d running commands in %v", t.wait, timeout)
	}
}

// close stops the commands still running (the refresh timer) and closes
// the node.
func (t *tuiRun) close() {
	select {
	case <-t.done:
	default:
		close(t.done)
	}
	t.n.Close()
}

// sync runs a command and the commands it leads to synchronously, without
// rendering: the background work a measured keystroke started.
func (t *tuiRun) sync(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	msg := cmd()
	if batch, ok := msg.(tea.BatchMsg); ok {
		for _, c := range batch {
			t.sync(c)
		}
		return
	}
	if msg == nil {
		return
	}
	t.m, cmd = t.m.Update(msg)
	t.sync(cmd)
}

func (t *tuiRun) key(k tea.KeyMsg) tea.Cmd {
	var cmd tea.Cmd
	t.m, cmd = t.m.Update(k)
	return cmd
}

var (
	keyDown = tea.KeyMsg{Type: tea.KeyDown}
	keyTab  = tea.KeyMsg{Type: tea.KeyTab}
	keyOpen = tea.KeyMsg{Type: tea.KeyEnter}
)

func keyRune(r rune) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}} }

const tuiLoading = "Reading the repository…"

// overviewLoaded reports whether the overview shows the repository's data.
func overviewLoaded(view string) bool {
	return !strings.Contains(view, tuiLoading) && strings.Contains(view, " logical, ")
}

// tuiFirstScreen opens the repository, then times tui.New, the window
// size, Init and every command it leads to, until the overview shows the
// loaded data, including its View. It then lets the other loads of Init
// finish (untimed), so that the Files screen has its root listing.
func tuiFirstScreen(ctx context.Context, repo string) (*tuiRun, error) {
	settle()
	ostart := time.Now()
	n, err := node.Open(ctx, repo, node.Options{})
	if err != nil {
		return nil, err
	}
	t := &tuiRun{n: n, msgs: make(chan tea.Msg), done: make(chan struct{}), open: time.Since(ostart)}
	start := time.Now()
	t.m = tui.New(ctx, n, tui.Options{})
	t.m, _ = t.m.Update(tea.WindowSizeMsg{Width: tuiWidth, Height: tuiHeight})
	t.wait++ // Init's command, handed to handle as a batch
	t.handle(tea.BatchMsg{t.m.Init()})
	view := t.m.View()
	for !overviewLoaded(view) {
		msg, err := t.next(30 * time.Second)
		if err != nil {
			t.close()
			return nil, err
		}
		t.handle(msg)
		view = t.m.View()
	}
	t.first = time.Since(start)
	if strings.Contains(view, "error:") {
		t.close()
		return nil, fmt.Errorf("the first screen shows an error:\n%s", view)
	}

	// Untimed: wait for the root listing (and the other loads, which is
	// all but the refresh timer), looking at the Files screen on a copy.
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := t.m.Update(keyRune('2'))
		if strings.Contains(files.View(), "big/") && t.wait <= 1 {
			break
		}
		msg, err := t.next(time.Until(deadline))
		if err != nil {
			t.close()
			return nil, fmt.Errorf("waiting for the root listing: %w", err)
		}
		t.handle(msg)
	}
	return t, nil
}

// timed is a series of redraw times.
type timed []time.Duration

func (s timed) median() time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	return c[len(c)/2]
}

func (s timed) max() time.Duration { return slices.Max(s) }

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.2f ms", ms(d)) }

var firstEntries = regexp.MustCompile(`first (\d+) entries`)

// tuiKeys measures keystrokes on the dashboard t after its first screen:
// Update(key) and the finished View, per key. The commands a key starts
// (the copy counts of the rows that scroll into view) run afterwards,
// synchronously and untimed, and their message's Update + View is timed
// apart.
func (b *bench) tuiKeys(t *tuiRun, inBig int) error {
	// To the Files screen, into big/: the listing is run synchronously,
	// untimed, as the screen needs it.
	t.sync(t.key(keyRune('2')))
	root := t.m.View()
	if !strings.Contains(root, "big/") {
		return fmt.Errorf("the Files screen shows no big/:\n%s", root)
	}
	t.sync(t.key(keyOpen)) // big/ sorts first
	view := t.m.View()
	if !strings.Contains(view, "/big") || !strings.Contains(view, "f000000.txt") {
		return fmt.Errorf("enter did not open big/:\n%s", view)
	}
	listed, count := fmt.Sprintf("all %d entries", inBig), fmt.Sprint(inBig)
	if m := firstEntries.FindStringSubmatch(view); m != nil {
		listed, count = fmt.Sprintf("the first %s of %d entries, the dashboard's cap", m[1], inBig), m[1]
	}

	var keys, copies, loads timed
	for range tuiKeys {
		start := time.Now()
		cmd := t.key(keyDown)
		_ = t.m.View()
		keys = append(keys, time.Since(start))
		if cmd == nil {
			continue
		}
		// The copy count of the row that scrolled in: the command's
		// latency apart, then the redraw with it.
		start = time.Now()
		msg := cmd()
		loads = append(loads, time.Since(start))
		start = time.Now()
		var next tea.Cmd
		t.m, next = t.m.Update(msg)
		_ = t.m.View()
		copies = append(copies, time.Since(start))
		t.sync(next)
	}
	view = t.m.View()
	if !strings.Contains(view, fmt.Sprintf("f%06d.txt", tuiKeys)) {
		return fmt.Errorf("after %d keys down the list does not show entry %d:\n%s", tuiKeys, tuiKeys, view)
	}
	// The limit: View alone, on the same screen.
	var views timed
	for range tuiKeys {
		start := time.Now()
		_ = t.m.View()
		views = append(views, time.Since(start))
	}
	fmt.Printf("  Files /big (%s), %d keys down: Update+View median %s, max %s; View alone median %s\n",
		listed, len(keys), fmtMS(keys.median()), fmtMS(keys.max()), fmtMS(views.median()))
	if len(copies) > 0 {
		fmt.Printf("  copy counts of rows scrolled in (%d commands, untimed above): command median %s, max %s; their Update+View median %s, max %s\n",
			len(copies), fmtMS(loads.median()), fmtMS(loads.max()), fmtMS(copies.median()), fmtMS(copies.max()))
	}
	b.addRedraw(fmt.Sprintf("tui: key down in a list of %s entries, Update+View", count), keys, views, "View alone")

	// Switching screens: tab, round all five, from the scrolled list.
	var tabs, tabViews timed
	perScreen := make([]time.Duration, 5)
	for i := range tuiKeys {
		start := time.Now()
		cmd := t.key(keyTab)
		_ = t.m.View()
		el := time.Since(start)
		tabs = append(tabs, el)
		perScreen[(i+2)%5] = max(perScreen[(i+2)%5], el) // from Files (index 1), tab lands on i+2
		t.sync(cmd)
		start = time.Now()
		_ = t.m.View()
		tabViews = append(tabViews, time.Since(start))
	}
	var worst []string
	for i, name := range []string{"Overview", "Files", "Peers", "GC", "Activity"} {
		worst = append(worst, fmt.Sprintf("%s %s", name, fmtMS(perScreen[i])))
	}
	fmt.Printf("  %d tabs round the five screens: Update+View median %s, max %s; max per screen: %s\n",
		len(tabs), fmtMS(tabs.median()), fmtMS(tabs.max()), strings.Join(worst, ", "))
	b.addRedraw("tui: tab to the next screen, Update+View", tabs, tabViews, "View alone")
	return nil
}

// addRedraw adds a redraw figure: its median and maximum against the
// rendering alone, the verdict on the maximum.
func (b *bench) addRedraw(name string, s, limit timed, what string) {
	b.add(row{name: name, value: fmt.Sprintf("median %s, max %s", fmtMS(s.median()), fmtMS(s.max())),
		limit:   fmt.Sprintf("%s median %s", what, fmtMS(limit.median())),
		target:  "< 50 ms",
		verdict: verdict(s.max() < tuiRedrawTarget, fmt.Sprintf("max %.0f%% of target", 100*ms(s.max())/ms(tuiRedrawTarget)))})
}
