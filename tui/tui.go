// Package tui is loft's terminal dashboard: files, replication health,
// transfers and garbage collection at a glance, built with bubbletea,
// lipgloss and bubbles. It reads and acts through the same node API as the
// command line; every call runs in a tea.Cmd, so a slow disk or peer never
// freezes the screen.
package tui

import (
	"context"
	"io"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/transfer"
)

// Backend is what the dashboard shows and acts on: a node's repository.
// *node.Node implements it; so do tests' fakes.
type Backend interface {
	Status(ctx context.Context) (node.Status, error)
	Stat(ctx context.Context) (node.StatResult, error)
	List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error
	Versions(ctx context.Context, name names.Name) ([]catalog.Version, error)
	Restore(ctx context.Context, name names.Name, num int64) (node.RestoreResult, error)
	Remove(ctx context.Context, objs []names.Name, recursive bool) (node.RemoveResult, error)
	Get(ctx context.Context, target names.Prefix, dest string, opts node.GetOptions) (node.GetResult, error)
	Copies(ctx context.Context, name names.Name) (int, error)
	GC(ctx context.Context, opts node.GCOptions) (gc.Result, error)
	GCRuns(ctx context.Context, limit int) ([]catalog.GCRun, error)
	LastChanges(ctx context.Context, limit int) ([]catalog.Change, error)
	Changes(ctx context.Context, after int64, limit int) ([]catalog.Change, error)
	Invite(ctx context.Context, addrs []string, ttl time.Duration) (transfer.Invite, error)
	RemovePeer(ctx context.Context, ref string) error
	// Events returns the event stream of the node serving this repository,
	// or node.ErrNotServing.
	Events(ctx context.Context) (<-chan node.Event, error)
}

// Options configure Run.
type Options struct {
	In  io.Reader
	Out io.Writer
	// Refresh is how often the dashboard re-reads the repository when no
	// node serves it; 0 means 2s.
	Refresh time.Duration
	// InviteAddrs are the addresses put in invite tokens.
	InviteAddrs []string
}

// Run shows the dashboard until the user quits or ctx ends.
func Run(ctx context.Context, b Backend, opts Options) error {
	m := New(ctx, b, opts)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithAltScreen(), tea.WithInput(opts.In), tea.WithOutput(opts.Out))
	_, err := p.Run()
	if err == tea.ErrProgramKilled && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Screens, in tab order.
const (
	screenOverview = iota
	screenFiles
	screenPeers
	screenGC
	screenActivity
	screens
)

var screenNames = [screens]string{"Overview", "Files", "Peers", "GC", "Activity"}

// Model is the dashboard.
type Model struct {
	ctx  context.Context
	b    Backend
	opts Options

	width, height int
	screen        int
	keys          keyMap
	help          help.Model
	st            styles

	// What every screen may show, refreshed together.
	status    node.Status
	stat      node.StatResult
	loaded    bool
	live      bool // a serving node's event stream feeds the dashboard
	events    <-chan node.Event
	err       error // the last failure to read, shown in the status line
	actionErr error // the last action's failure, shown until the next key
	notice    string
	rates     []float64 // transfer throughput samples, newest last
	lastSeq   int64     // newest change shown in the feed
	feed      []feedItem
	lastRates time.Time

	files    filesModel
	peers    peersModel
	gcScreen gcModel
}

// New returns the dashboard's model, for Run and for tests.
func New(ctx context.Context, b Backend, opts Options) Model {
	if opts.Refresh == 0 {
		opts.Refresh = 2 * time.Second
	}
	m := Model{ctx: ctx, b: b, opts: opts, keys: newKeyMap(), help: help.New(), st: newStyles(), width: 80, height: 24}
	m.files = newFiles()
	m.gcScreen = newGC()
	return m
}

// Init starts loading: the event stream if a node serves the repository,
// the status, the root of the namespace, the feed and the GC history.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.connect(), m.refresh(), m.files.load(m, ""), m.loadFeed(), m.gcScreen.loadRuns(m))
}

// Messages from commands.
type (
	statusMsg struct {
		status node.Status
		stat   node.StatResult
		err    error
	}
	tickMsg      struct{}
	connectedMsg struct {
		events <-chan node.Event
		err    error
	}
	eventMsg    struct{ e node.Event }
	streamEnded struct{}
	feedMsg     struct {
		changes []catalog.Change
		err     error
	}
	noticeMsg struct {
		text string
		err  error
	}
)

func (m Model) connect() tea.Cmd {
	return func() tea.Msg {
		ch, err := m.b.Events(m.ctx)
		return connectedMsg{ch, err}
	}
}

func waitEvent(ch <-chan node.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return streamEnded{}
		}
		return eventMsg{e}
	}
}

func (m Model) refresh() tea.Cmd {
	return func() tea.Msg {
		st, err := m.b.Status(m.ctx)
		if err != nil {
			return statusMsg{err: err}
		}
		stat, err := m.b.Stat(m.ctx)
		return statusMsg{status: st, stat: stat, err: err}
	}
}

func (m Model) tick() tea.Cmd {
	return tea.Tick(m.opts.Refresh, func(time.Time) tea.Msg { return tickMsg{} })
}

// Update handles a message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		return m, nil
	case connectedMsg:
		if msg.err == nil {
			m.live, m.events = true, msg.events
			return m, waitEvent(msg.events)
		}
		m.live = false
		return m, m.tick()
	case streamEnded:
		m.live, m.events = false, nil
		m.notice = "the serving node went away: reading the repository directly"
		return m, tea.Batch(m.refresh(), m.tick())
	case eventMsg:
		cmds := []tea.Cmd{waitEvent(m.events)}
		switch msg.e.Kind {
		case "status":
			if msg.e.Status != nil {
				m.status, m.loaded = *msg.e.Status, true
				m.sampleRate()
				cmds = append(cmds, m.refreshStat())
			}
		case "change":
			if c := msg.e.Change; c != nil && c.Seq > m.lastSeq {
				m.lastSeq = c.Seq
				m.addFeed(feedItem{at: c.At, text: describeChange(*c)})
			}
		case "log":
			m.addFeed(feedItem{at: msg.e.At, text: msg.e.Msg, warn: true})
		}
		return m, tea.Batch(cmds...)
	case statusMsg:
		if msg.err != nil {
			m.err = msg.err
		} else {
			m.status, m.stat, m.loaded, m.err = msg.status, msg.stat, true, nil
			m.sampleRate()
		}
		return m, nil
	case statMsg:
		if msg.err == nil {
			m.stat = msg.stat
		}
		return m, nil
	case tickMsg:
		if m.live {
			return m, nil
		}
		return m, tea.Batch(m.refresh(), m.pollFeed(), m.tick())
	case feedMsg:
		if msg.err != nil {
			m.err = msg.err
			return m, nil
		}
		for _, c := range msg.changes {
			if c.Seq > m.lastSeq {
				m.lastSeq = c.Seq
				m.addFeed(feedItem{at: c.At, text: describeChange(c)})
			}
		}
		return m, nil
	case noticeMsg:
		m.notice, m.actionErr = msg.text, msg.err
		return m, tea.Batch(m.refresh(), m.files.load(m, m.files.dir), m.gcScreen.loadRuns(m))
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m.forward(msg)
}

type statMsg struct {
	stat node.StatResult
	err  error
}

func (m Model) refreshStat() tea.Cmd {
	return func() tea.Msg {
		st, err := m.b.Stat(m.ctx)
		return statMsg{st, err}
	}
}

// forward hands a message to the screens that own it.
func (m Model) forward(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd1, cmd2, cmd3 tea.Cmd
	m.files, cmd1 = m.files.update(m, msg)
	m.peers, cmd2 = m.peers.update(m, msg)
	m.gcScreen, cmd3 = m.gcScreen.update(m, msg)
	return m, tea.Batch(cmd1, cmd2, cmd3)
}

// key handles a key press: screens that are taking text or a confirmation
// get it first, then the global keys, then the current screen.
func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if key.Matches(msg, m.keys.ForceQuit) {
		return m, tea.Quit
	}
	m.actionErr = nil
	if m.capturing() {
		return m.screenKey(msg)
	}
	switch {
	case key.Matches(msg, m.keys.Quit):
		return m, tea.Quit
	case key.Matches(msg, m.keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		return m, nil
	case key.Matches(msg, m.keys.Next):
		m.screen = (m.screen + 1) % screens
		return m, nil
	case key.Matches(msg, m.keys.Prev):
		m.screen = (m.screen + screens - 1) % screens
		return m, nil
	case key.Matches(msg, m.keys.Screen):
		m.screen = int(msg.Runes[0] - '1')
		return m, nil
	case key.Matches(msg, m.keys.Refresh):
		return m, tea.Batch(m.refresh(), m.files.load(m, m.files.dir), m.gcScreen.loadRuns(m), m.pollFeed())
	}
	return m.screenKey(msg)
}

// capturing reports whether the current screen is taking every key (a text
// field or a confirmation is open).
func (m Model) capturing() bool {
	switch m.screen {
	case screenFiles:
		return m.files.capturing()
	case screenPeers:
		return m.peers.capturing()
	}
	return false
}

func (m Model) screenKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch m.screen {
	case screenFiles:
		m.files, cmd = m.files.key(m, msg)
	case screenPeers:
		m.peers, cmd = m.peers.key(m, msg)
	case screenGC:
		m.gcScreen, cmd = m.gcScreen.key(m, msg)
	}
	return m, cmd
}

// sampleRate records the transfer throughput for the sparkline.
func (m *Model) sampleRate() {
	t := m.status.Transfer
	if t == nil || !t.At.After(m.lastRates) {
		return
	}
	m.lastRates = t.At
	m.rates = append(m.rates, t.SendRate+t.RecvRate)
	if len(m.rates) > 120 {
		m.rates = m.rates[len(m.rates)-120:]
	}
}

// View renders the whole screen: tabs, the current screen, a status line
// and the key help, in exactly the terminal's size.
func (m Model) View() string {
	if m.width < 20 || m.height < 6 {
		return "loft: window too small"
	}
	tabs := m.tabs()
	helpView := m.helpView()
	status := m.statusLine()
	bodyHeight := m.bodyHeight()
	var body string
	switch m.screen {
	case screenOverview:
		body = m.overviewView(bodyHeight)
	case screenFiles:
		body = m.files.view(m, bodyHeight)
	case screenPeers:
		body = m.peers.view(m, bodyHeight)
	case screenGC:
		body = m.gcScreen.view(m, bodyHeight)
	case screenActivity:
		body = m.activityView(bodyHeight)
	}
	body = fit(body, m.width, bodyHeight)
	return lipgloss.JoinVertical(lipgloss.Left, tabs, body, status, helpView)
}

// helpView is the key help, fitted to the width.
func (m Model) helpView() string {
	h := m.help.View(m.screenKeys())
	if !m.help.ShowAll {
		return truncate(h, m.width)
	}
	return fit(h, m.width, lipgloss.Height(h))
}

func (m Model) tabs() string {
	var parts []string
	for i, name := range screenNames {
		label := string(rune('1'+i)) + " " + name
		if i == m.screen {
			// Brackets as well as reverse video: the active tab shows on a
			// terminal without attributes too.
			parts = append(parts, m.st.tabActive.Render("["+label+"]"))
		} else {
			parts = append(parts, m.st.tab.Render(" "+label+" "))
		}
	}
	row := lipgloss.JoinHorizontal(lipgloss.Top, parts...)
	return truncate(row, m.width)
}

func (m Model) statusLine() string {
	mode := "reading the repository directly (no node is serving it)"
	if m.live {
		mode = "live: following the serving node"
	}
	line := mode
	switch {
	case m.actionErr != nil:
		line = m.st.bad.Render("error: " + oneLine(m.actionErr.Error()))
	case m.err != nil:
		line = m.st.bad.Render("error: " + oneLine(m.err.Error()))
	case m.notice != "":
		line = m.notice
	}
	return m.st.statusBar.Render(truncate(line, m.width))
}
