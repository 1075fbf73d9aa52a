package tui

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
)

// maxEntries bounds what one directory listing loads; the filter narrows
// what is shown among them.
const maxEntries = 20000

// filesModel browses the namespace one directory at a time.
type filesModel struct {
	dir       string // "" is the root
	entries   []catalog.Entry
	truncated bool
	loading   bool
	copies    map[string]int
	cursor    int
	offset    int

	filter    string
	filtering bool
	input     textinput.Model

	// The versions of one object, when shown.
	vname    string
	versions []catalog.Version
	vcursor  int

	confirm string // "delete": waiting for y/n
	getting bool   // asking for the destination of a get
	dest    textinput.Model
	got     *getState
}

type getState struct {
	name              string
	bytes, bytesTotal int64
	files, filesTotal int64
	done              bool
	progress          progress.Model
	updates           <-chan tea.Msg
	started           time.Time
}

func newFiles() filesModel {
	in := textinput.New()
	in.Prompt = "filter: "
	dest := textinput.New()
	dest.Prompt = "get to directory: "
	return filesModel{copies: map[string]int{}, input: in, dest: dest}
}

type (
	listMsg struct {
		dir       string
		entries   []catalog.Entry
		truncated bool
		err       error
	}
	copiesMsg struct {
		copies map[string]int
	}
	versionsMsg struct {
		name     string
		versions []catalog.Version
		err      error
	}
	getProgressMsg struct{ p node.GetProgress }
	getDoneMsg     struct {
		res node.GetResult
		err error
	}
)

func (f filesModel) load(m Model, dir string) tea.Cmd {
	return func() tea.Msg {
		prefix, err := names.ParsePrefix(dir)
		if err != nil {
			return listMsg{dir: dir, err: err}
		}
		var out []catalog.Entry
		truncated := false
		// Deleted objects are listed too (marked): restoring one is an action here.
		err = m.b.List(m.ctx, prefix, catalog.ListOptions{Deleted: true, Below: true}, func(e catalog.Entry) error {
			if len(out) == maxEntries {
				truncated = true
				return errFull
			}
			out = append(out, e)
			return nil
		})
		if errors.Is(err, errFull) {
			err = nil
		}
		if dir == "" && errors.Is(err, fault.NotFound) {
			err = nil
		}
		return listMsg{dir: dir, entries: out, truncated: truncated, err: err}
	}
}

var errFull = errors.New("listing full")

// loadCopies reads the copy counts of the objects on screen.
func (f filesModel) loadCopies(m Model, height int) tea.Cmd {
	var objs []string
	for _, e := range f.visible(height) {
		if _, ok := f.copies[e.Name]; !ok && !e.Dir {
			objs = append(objs, e.Name)
		}
	}
	if len(objs) == 0 {
		return nil
	}
	return func() tea.Msg {
		out := map[string]int{}
		for _, n := range objs {
			c := -1
			if name, err := names.Parse(n); err == nil {
				if c, err = m.b.Copies(m.ctx, name); err != nil {
					c = -1
				}
			}
			out[n] = c
		}
		return copiesMsg{out}
	}
}

func (f filesModel) capturing() bool { return f.filtering || f.confirm != "" || f.getting }

// shown returns the entries the filter lets through.
func (f filesModel) shown() []catalog.Entry {
	if f.filter == "" {
		return f.entries
	}
	var out []catalog.Entry
	low := strings.ToLower(f.filter)
	for _, e := range f.entries {
		if strings.Contains(strings.ToLower(path.Base(e.Name)), low) {
			out = append(out, e)
		}
	}
	return out
}

func (f filesModel) visible(height int) []catalog.Entry {
	all := f.shown()
	rows := max(1, height-3)
	end := min(len(all), f.offset+rows)
	if f.offset >= end {
		return nil
	}
	return all[f.offset:end]
}

func (f filesModel) selected() (catalog.Entry, bool) {
	all := f.shown()
	if f.cursor < 0 || f.cursor >= len(all) {
		return catalog.Entry{}, false
	}
	return all[f.cursor], true
}

func (f filesModel) update(m Model, msg tea.Msg) (filesModel, tea.Cmd) {
	switch msg := msg.(type) {
	case listMsg:
		if msg.dir != f.dir {
			return f, nil
		}
		f.loading = false
		var refused *node.RefusedError
		if msg.err != nil && !errors.As(msg.err, &refused) {
			return f, func() tea.Msg { return noticeErr(msg.err) }
		}
		f.entries, f.truncated = msg.entries, msg.truncated
		if refused != nil {
			// A peer's entries with bad names were left out: say so, show the rest.
			err := msg.err
			f.cursor = min(f.cursor, max(0, len(f.shown())-1))
			return f, tea.Batch(f.loadCopies(m, m.bodyHeight()), func() tea.Msg { return noticeErr(err) })
		}
		f.cursor = min(f.cursor, max(0, len(f.shown())-1))
		f.clampOffset(m.bodyHeight())
		return f, f.loadCopies(m, m.bodyHeight())
	case copiesMsg:
		for k, v := range msg.copies {
			f.copies[k] = v
		}
	case versionsMsg:
		if msg.err != nil {
			return f, func() tea.Msg { return noticeErr(msg.err) }
		}
		f.vname, f.versions, f.vcursor = msg.name, msg.versions, 0
	case getProgressMsg:
		if f.got != nil {
			f.got.bytes, f.got.bytesTotal, f.got.files, f.got.filesTotal = msg.p.Bytes, msg.p.BytesTotal, msg.p.Files, msg.p.FilesTotal
			return f, waitMsg(f.got.updates)
		}
	case getDoneMsg:
		if f.got == nil {
			return f, nil
		}
		name := f.got.name
		f.got = nil
		if msg.err != nil {
			return f, func() tea.Msg { return noticeMsg{err: fmt.Errorf("get %s: %w", name, msg.err)} }
		}
		text := fmt.Sprintf("got %s: %d files, %s", name, msg.res.Files, size(msg.res.Bytes))
		if len(msg.res.Failed) > 0 {
			text += fmt.Sprintf(", %d failed", len(msg.res.Failed))
		}
		return f, func() tea.Msg { return noticeMsg{text: text} }
	}
	return f, nil
}

func noticeErr(err error) tea.Msg { return noticeMsg{err: err} }

func waitMsg(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return nil
		}
		return msg
	}
}

// bodyHeight is the height of the screen's body, as View lays it out.
func (m Model) bodyHeight() int {
	return max(1, m.height-2-lipgloss.Height(m.helpView()))
}

func (f *filesModel) clampOffset(height int) {
	rows := max(1, height-3)
	if f.cursor < f.offset {
		f.offset = f.cursor
	}
	if f.cursor >= f.offset+rows {
		f.offset = f.cursor - rows + 1
	}
	f.offset = max(0, f.offset)
}

func (f filesModel) key(m Model, msg tea.KeyMsg) (filesModel, tea.Cmd) {
	k := m.keys
	switch {
	case f.filtering:
		switch msg.Type {
		case tea.KeyEnter:
			f.filtering = false
			f.input.Blur()
		case tea.KeyEsc:
			f.filtering, f.filter = false, ""
			f.input.SetValue("")
			f.input.Blur()
		default:
			var cmd tea.Cmd
			f.input, cmd = f.input.Update(msg)
			f.filter, f.cursor, f.offset = f.input.Value(), 0, 0
			return f, tea.Batch(cmd, f.loadCopies(m, m.bodyHeight()))
		}
		return f, nil
	case f.confirm != "":
		e, ok := f.selected()
		f.confirm = ""
		if !ok || !key.Matches(msg, k.Confirm) {
			return f, nil
		}
		return f, func() tea.Msg {
			name, err := names.ParseArg(e.Name)
			if err != nil {
				return noticeErr(err)
			}
			res, err := m.b.Remove(m.ctx, []names.Name{name}, e.Dir)
			if err == nil && len(res.Failed) > 0 {
				err = res.Failed[0].Err
			}
			return noticeMsg{text: fmt.Sprintf("deleted %s (%d objects; loft restore undoes it)", safe(e.Name), len(res.Deleted)), err: err}
		}
	case f.getting:
		switch msg.Type {
		case tea.KeyEnter:
			f.getting = false
			f.dest.Blur()
			e, ok := f.selected()
			if !ok || strings.TrimSpace(f.dest.Value()) == "" {
				return f, nil
			}
			return f.startGet(m, e.Name, f.dest.Value())
		case tea.KeyEsc:
			f.getting = false
			f.dest.Blur()
			return f, nil
		}
		var cmd tea.Cmd
		f.dest, cmd = f.dest.Update(msg)
		return f, cmd
	case f.versions != nil:
		switch {
		case key.Matches(msg, k.Up):
			f.vcursor = max(0, f.vcursor-1)
		case key.Matches(msg, k.Down):
			f.vcursor = min(len(f.versions)-1, f.vcursor+1)
		case key.Matches(msg, k.Back), msg.Type == tea.KeyEsc:
			f.versions, f.vname = nil, ""
		case key.Matches(msg, k.Restore):
			v := f.versions[f.vcursor]
			name := f.vname
			f.versions, f.vname = nil, ""
			if v.Deleted {
				return f, func() tea.Msg { return noticeMsg{text: "a deletion has no content to restore"} }
			}
			return f, func() tea.Msg {
				obj, err := names.Parse(name)
				if err != nil {
					return noticeErr(err)
				}
				res, err := m.b.Restore(m.ctx, obj, v.Num)
				text := fmt.Sprintf("restored %s: version %d has the content of version %d", name, res.Version.Num, v.Num)
				if res.Unchanged {
					text = fmt.Sprintf("%s version %d is already the newest", name, v.Num)
				}
				return noticeMsg{text: text, err: err}
			}
		}
		return f, nil
	}
	height := m.bodyHeight()
	switch {
	case key.Matches(msg, k.Up):
		f.cursor = max(0, f.cursor-1)
	case key.Matches(msg, k.Down):
		f.cursor = min(max(0, len(f.shown())-1), f.cursor+1)
	case msg.Type == tea.KeyPgDown:
		f.cursor = min(max(0, len(f.shown())-1), f.cursor+height-3)
	case msg.Type == tea.KeyPgUp:
		f.cursor = max(0, f.cursor-(height-3))
	case key.Matches(msg, k.Open):
		e, ok := f.selected()
		if !ok {
			return f, nil
		}
		if e.Dir {
			f.dir, f.cursor, f.offset, f.filter, f.entries, f.loading = strings.TrimSuffix(e.Name, "/"), 0, 0, "", nil, true
			f.input.SetValue("")
			return f, f.load(m, f.dir)
		}
		return f, f.loadVersions(m, e.Name)
	case key.Matches(msg, k.Back):
		if f.dir == "" {
			return f, nil
		}
		parent := path.Dir(f.dir)
		if parent == "." {
			parent = ""
		}
		f.dir, f.cursor, f.offset, f.filter, f.entries, f.loading = parent, 0, 0, "", nil, true
		f.input.SetValue("")
		return f, f.load(m, f.dir)
	case key.Matches(msg, k.Filter):
		f.filtering = true
		return f, f.input.Focus()
	case key.Matches(msg, k.Versions):
		if e, ok := f.selected(); ok && !e.Dir {
			return f, f.loadVersions(m, e.Name)
		}
	case key.Matches(msg, k.Delete):
		if _, ok := f.selected(); ok {
			f.confirm = "delete"
		}
	case key.Matches(msg, k.Get):
		if _, ok := f.selected(); ok && f.got == nil {
			f.getting = true
			return f, f.dest.Focus()
		}
	}
	f.clampOffset(height)
	return f, f.loadCopies(m, height)
}

func (f filesModel) loadVersions(m Model, name string) tea.Cmd {
	return func() tea.Msg {
		obj, err := names.Parse(name)
		if err != nil {
			return versionsMsg{name: name, err: err}
		}
		vs, err := m.b.Versions(m.ctx, obj)
		return versionsMsg{name: name, versions: vs, err: err}
	}
}

// startGet runs a get in the background; its progress arrives as messages.
func (f filesModel) startGet(m Model, name, dest string) (filesModel, tea.Cmd) {
	updates := make(chan tea.Msg, 1)
	f.got = &getState{name: name, progress: progress.New(progress.WithDefaultGradient()), updates: updates, started: time.Now()}
	go func() {
		defer close(updates)
		target, err := names.ParsePrefix(name)
		if err != nil {
			updates <- getDoneMsg{node.GetResult{}, err}
			return
		}
		res, err := m.b.Get(m.ctx, target, dest, node.GetOptions{Progress: func(p node.GetProgress) {
			select {
			case updates <- getProgressMsg{p}:
			default: // the screen shows the latest; skipping one is fine
			}
		}})
		updates <- getDoneMsg{res, err}
	}()
	return f, waitMsg(updates)
}

func (f filesModel) view(m Model, height int) string {
	var b strings.Builder
	if f.versions != nil {
		return f.versionsView(m, height)
	}
	where := "/" + f.dir
	head := m.st.title.Render(where)
	switch {
	case f.loading:
		head += m.st.dim.Render("  loading…")
	case f.truncated:
		head += m.st.dim.Render(fmt.Sprintf("  first %d entries", maxEntries))
	}
	b.WriteString(head + "\n")
	nameW := max(10, m.width-50)
	fmt.Fprintf(&b, "%s\n", m.st.dim.Render(fmt.Sprintf("  %-*s %10s %4s %-16s %6s", nameW, "NAME", "SIZE", "VERS", "MODIFIED", "COPIES")))
	shown := f.shown()
	if len(shown) == 0 && !f.loading {
		b.WriteString(m.st.dim.Render("  (empty)") + "\n")
	}
	for i, e := range f.visible(height) {
		idx := f.offset + i
		name := path.Base(strings.TrimSuffix(e.Name, "/"))
		var line string
		if e.Dir {
			line = fmt.Sprintf("%-*s %10s %4s %-16s %6s", nameW, clip(name+"/", nameW), "", "", "", "")
		} else {
			copies := "…"
			if c, ok := f.copies[e.Name]; ok {
				copies = fmt.Sprint(c)
				if c < 0 {
					copies = "?"
				}
			}
			if e.Head.Deleted {
				name += " (deleted)"
			}
			line = fmt.Sprintf("%-*s %10s %4d %-16s %6s", nameW, clip(name, nameW), size(e.Head.Size), e.Versions,
				e.Head.MTime.Local().Format("2006-01-02 15:04"), copies)
			if c, ok := f.copies[e.Name]; ok && c >= 0 && c < m.status.Replication.Replicas && !e.Head.Deleted {
				line = m.st.warn.Render(line)
			}
		}
		b.WriteString(m.row(line, idx == f.cursor) + "\n")
	}
	// The last line: the filter, a question, or a get in progress.
	lines := strings.Count(b.String(), "\n")
	for ; lines < height-1; lines++ {
		b.WriteString("\n")
	}
	switch {
	case f.filtering:
		b.WriteString(f.input.View())
	case f.confirm != "":
		e, _ := f.selected()
		b.WriteString(m.st.warn.Render(fmt.Sprintf("delete %s? (y/n; a deletion is a new version, restore undoes it)", safe(e.Name))))
	case f.getting:
		b.WriteString(f.dest.View())
	case f.got != nil:
		frac := 0.0
		if f.got.bytesTotal > 0 {
			frac = float64(f.got.bytes) / float64(f.got.bytesTotal)
		}
		f.got.progress.Width = max(10, m.width-40)
		b.WriteString(fmt.Sprintf("getting %s %s %s/%s", clip(path.Base(f.got.name), 16), f.got.progress.ViewAs(frac), size(f.got.bytes), size(f.got.bytesTotal)))
	case f.filter != "":
		b.WriteString(m.st.dim.Render(fmt.Sprintf("filter %q: %d of %d", f.filter, len(shown), len(f.entries))))
	}
	return b.String()
}

func (f filesModel) versionsView(m Model, height int) string {
	var b strings.Builder
	b.WriteString(m.st.title.Render("Versions of "+f.vname) + "\n")
	b.WriteString(m.st.dim.Render(fmt.Sprintf("  %7s %-16s %10s %-16s %s", "VERSION", "CREATED", "SIZE", "MODIFIED", "NOTE")) + "\n")
	rows := max(1, height-3)
	start := max(0, min(f.vcursor-rows+1, len(f.versions)-rows))
	for i := start; i < len(f.versions) && i < start+rows; i++ {
		v := f.versions[i]
		note := ""
		switch {
		case v.Deleted:
			note = "deleted"
		case v.RestoredFrom > 0:
			note = fmt.Sprintf("restored from %d", v.RestoredFrom)
		}
		if i == 0 {
			note = strings.TrimPrefix(note+", current", ", ")
		}
		sz, mt := size(v.Size), v.MTime.Local().Format("2006-01-02 15:04")
		if v.Deleted {
			sz, mt = "-", "-"
		}
		line := fmt.Sprintf("%7d %-16s %10s %-16s %s", v.Num, v.Created.Local().Format("2006-01-02 15:04"), sz, mt, note)
		b.WriteString(m.row(line, i == f.vcursor) + "\n")
	}
	return b.String()
}
