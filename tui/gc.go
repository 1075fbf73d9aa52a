package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/node"
)

// gcModel shows pending garbage, a preview, a run with progress, and the
// history of runs.
type gcModel struct {
	runs    []catalog.GCRun
	preview *gc.Result
	running *gcRun
}

type gcRun struct {
	phase   string
	done    int64
	total   int64
	updates <-chan tea.Msg
}

type (
	gcRunsMsg struct {
		runs []catalog.GCRun
		err  error
	}
	gcPreviewMsg struct {
		res gc.Result
		err error
	}
	gcProgressMsg struct{ p gc.Progress }
	gcDoneMsg     struct {
		res gc.Result
		err error
	}
)

func newGC() gcModel { return gcModel{} }

func (g gcModel) loadRuns(m Model) tea.Cmd {
	return func() tea.Msg {
		runs, err := m.b.GCRuns(m.ctx, 10)
		return gcRunsMsg{runs, err}
	}
}

func (g gcModel) update(m Model, msg tea.Msg) (gcModel, tea.Cmd) {
	switch msg := msg.(type) {
	case gcRunsMsg:
		if msg.err == nil {
			g.runs = msg.runs
		}
	case gcPreviewMsg:
		if msg.err != nil {
			return g, func() tea.Msg { return noticeMsg{err: msg.err} }
		}
		g.preview = &msg.res
	case gcProgressMsg:
		if g.running != nil {
			g.running.phase, g.running.done, g.running.total = msg.p.Phase, msg.p.Done, msg.p.Total
			return g, waitMsg(g.running.updates)
		}
	case gcDoneMsg:
		g.running, g.preview = nil, nil
		text := fmt.Sprintf("gc removed %s (%s) and %s", plural(msg.res.Chunks, "chunk"), size(msg.res.Bytes), plural(msg.res.Orphans, "orphan file"))
		return g, func() tea.Msg { return noticeMsg{text: text, err: msg.err} }
	}
	return g, nil
}

func (g gcModel) key(m Model, msg tea.KeyMsg) (gcModel, tea.Cmd) {
	switch {
	case key.Matches(msg, m.keys.Preview):
		return g, func() tea.Msg {
			res, err := m.b.GC(m.ctx, node.GCOptions{Grace: -1, DryRun: true})
			return gcPreviewMsg{res, err}
		}
	case key.Matches(msg, m.keys.RunGC):
		if g.running != nil {
			return g, nil
		}
		updates := make(chan tea.Msg, 1)
		g.running = &gcRun{phase: "starting", updates: updates}
		go func() {
			defer close(updates)
			res, err := m.b.GC(m.ctx, node.GCOptions{Grace: -1, Progress: func(p gc.Progress) {
				select {
				case updates <- gcProgressMsg{p}:
				default:
				}
			}})
			updates <- gcDoneMsg{res, err}
		}()
		return g, waitMsg(updates)
	}
	return g, nil
}

func (g gcModel) view(m Model, height int) string {
	var b strings.Builder
	now := time.Now()
	p := m.status.GC
	b.WriteString(m.st.title.Render("Garbage pending") + "\n")
	if p.Chunks == 0 {
		b.WriteString("  none\n")
	} else {
		oldest := ""
		if !p.Oldest.IsZero() {
			oldest = ", oldest unreferenced since " + ago(p.Oldest, now)
		}
		fmt.Fprintf(&b, "  %s, %s%s\n  %s (%s) past the grace period can go now\n",
			plural(p.Chunks, "chunk"), size(p.Bytes), oldest, plural(p.ReclaimChunks, "chunk"), size(p.ReclaimBytes))
	}
	b.WriteString("\n" + m.st.title.Render("Preview") + "  ")
	switch {
	case g.preview != nil:
		r := g.preview
		fmt.Fprintf(&b, "a run now would remove\n  %s (%s) and %s (%s)\n", plural(r.Chunks, "chunk"), size(r.Bytes), plural(r.Orphans, "orphan file"), size(r.OrphanBytes))
	default:
		b.WriteString(m.st.dim.Render("press p to see what a run would remove") + "\n")
	}
	if r := g.running; r != nil {
		total := r.total
		if total == 0 && r.phase == "sweep" {
			total = p.ReclaimChunks // what the sweep may remove, as of the last status
		}
		frac := 0.0
		if total > 0 {
			frac = float64(r.done) / float64(total)
		}
		pb := progress.New(progress.WithDefaultGradient(), progress.WithWidth(max(10, min(50, m.width-40))))
		fmt.Fprintf(&b, "\nrunning: %s %s %d\n", r.phase, pb.ViewAs(frac), r.done)
	}
	b.WriteString("\n" + m.st.title.Render("History") + "\n")
	b.WriteString(m.st.dim.Render(fmt.Sprintf("  %-17s %8s %10s %8s  %s", "WHEN", "CHUNKS", "BYTES", "ORPHANS", "RESULT")) + "\n")
	if len(g.runs) == 0 {
		b.WriteString(m.st.dim.Render("  no runs yet") + "\n")
	}
	rows := max(0, height-strings.Count(b.String(), "\n")-1)
	for i, r := range g.runs {
		if i >= rows {
			break
		}
		res := "ok"
		switch {
		case r.Error != "":
			res = m.st.bad.Render(clip(oneLine(r.Error), 30))
		case r.DryRun:
			res = "preview"
		}
		fmt.Fprintf(&b, "  %-17s %8d %10s %8d  %s\n", r.Finished.Local().Format("2006-01-02 15:04"), r.Chunks, size(r.Bytes), r.Orphans, res)
	}
	return b.String()
}
