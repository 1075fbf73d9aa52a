package tui

import (
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/loftstore/loft/catalog"
)

// feedItem is a line of the activity feed: a change, or a warning.
type feedItem struct {
	at   time.Time
	text string
	warn bool
}

// maxFeed bounds the feed kept in memory.
const maxFeed = 500

func (m *Model) addFeed(it feedItem) {
	m.feed = append(m.feed, it)
	if len(m.feed) > maxFeed {
		m.feed = m.feed[len(m.feed)-maxFeed:]
	}
}

func (m Model) loadFeed() tea.Cmd {
	return func() tea.Msg {
		chs, err := m.b.LastChanges(m.ctx, 100)
		return feedMsg{chs, err}
	}
}

func (m Model) pollFeed() tea.Cmd {
	after := m.lastSeq
	return func() tea.Msg {
		chs, err := m.b.Changes(m.ctx, after, 200)
		return feedMsg{chs, err}
	}
}

// describeChange turns a change of the log into a line for people.
func describeChange(c catalog.Change) string {
	who := ""
	if len(c.Origin) >= 8 {
		who = " (" + c.Origin[:8] + ")"
	}
	switch c.Op {
	case "put":
		return fmt.Sprintf("stored %s, version %d%s", safe(c.Name), c.Version, who)
	case "delete":
		return fmt.Sprintf("deleted %s%s", safe(c.Name), who)
	case "restore":
		return fmt.Sprintf("restored %s as version %d%s", safe(c.Name), c.Version, who)
	case "gc":
		return "garbage collection " + c.Detail
	case "config":
		return "setting changed: " + c.Detail
	case "peer-add":
		return "paired with " + clip(c.Detail, 12)
	case "peer-rm":
		return "removed peer " + clip(c.Detail, 12)
	case "repair":
		return "repair: " + c.Detail
	}
	return safe(strings.TrimSpace(c.Op + " " + c.Name + " " + c.Detail))
}

func (m Model) activityView(height int) string {
	var b strings.Builder
	b.WriteString(m.st.title.Render("Activity, newest first") + "\n")
	if len(m.feed) == 0 {
		b.WriteString(m.st.dim.Render("  nothing yet") + "\n")
	}
	rows := max(1, height-1)
	for i := len(m.feed) - 1; i >= 0 && len(m.feed)-1-i < rows; i-- {
		it := m.feed[i]
		line := fmt.Sprintf("%s  %s", it.at.Local().Format("01-02 15:04:05"), it.text)
		if it.warn {
			line = m.st.warn.Render(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
