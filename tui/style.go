package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/dustin/go-humanize"
)

// styles use adaptive colours, and bold and reverse video besides, so
// that the screen reads on a monochrome terminal too (lipgloss drops the
// colours there).
type styles struct {
	tab, tabActive, statusBar, title, dim, good, warn, bad, selected lipgloss.Style
}

func newStyles() styles {
	return styles{
		tab:       lipgloss.NewStyle(),
		tabActive: lipgloss.NewStyle().Bold(true).Reverse(true),
		statusBar: lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "240", Dark: "245"}),
		title:     lipgloss.NewStyle().Bold(true),
		dim:       lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "244", Dark: "242"}),
		good:      lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "28", Dark: "42"}),
		warn:      lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "130", Dark: "214"}).Bold(true),
		bad:       lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "124", Dark: "203"}).Bold(true),
		selected:  lipgloss.NewStyle().Reverse(true),
	}
}

// fit pads or cuts s to exactly width columns and height lines.
func fit(s string, width, height int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > height {
		lines = lines[:height]
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	for i, l := range lines {
		l = truncate(l, width)
		if w := ansi.StringWidth(l); w < width {
			l += strings.Repeat(" ", width-w)
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// truncate cuts s to width columns, marking the cut.
func truncate(s string, width int) string {
	if ansi.StringWidth(s) <= width {
		return s
	}
	return ansi.Truncate(s, width, "…")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func size(n int64) string {
	if n < 0 {
		n = 0
	}
	return humanize.IBytes(uint64(n))
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.Local().Format("2006-01-02")
}

// bar draws a horizontal bar of width cells filled to frac.
func bar(frac float64, width int) string {
	if width < 1 {
		return ""
	}
	frac = max(0, min(1, frac))
	full := int(frac*float64(width) + 0.5)
	return strings.Repeat("█", full) + strings.Repeat("░", width-full)
}

// sparkline draws the last width samples as eighth blocks, scaled to their
// maximum.
func sparkline(samples []float64, width int) string {
	ticks := []rune("▁▂▃▄▅▆▇█")
	if len(samples) > width {
		samples = samples[len(samples)-width:]
	}
	top := 0.0
	for _, s := range samples {
		top = max(top, s)
	}
	var b strings.Builder
	for range width - len(samples) {
		b.WriteRune(' ')
	}
	for _, s := range samples {
		i := 0
		if top > 0 {
			i = int(s / top * float64(len(ticks)-1))
		}
		b.WriteRune(ticks[i])
	}
	return b.String()
}

// row marks the selected row with a pointer as well as reverse video, so
// the selection shows on a terminal without attributes too.
func (m Model) row(line string, selected bool) string {
	if selected {
		return m.st.selected.Render("> " + line)
	}
	return "  " + line
}

// plural writes a count with its noun: "1 chunk", "2 chunks".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
