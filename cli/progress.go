package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// progressLine draws one status line on a terminal, redrawn in place. It is
// used only when stderr is a terminal: in a pipe nothing extra is printed.
type progressLine struct {
	w     io.Writer
	start time.Time
	drawn bool
}

func newProgressLine(w io.Writer) *progressLine { return &progressLine{w: w, start: time.Now()} }

func (p *progressLine) width() int {
	if f, ok := p.w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 10 {
			return w
		}
	}
	return 80
}

// draw replaces the line with text, cut to the terminal's width.
func (p *progressLine) draw(text string) {
	w := p.width() - 1
	if len(text) > w {
		text = text[:w]
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", text)
	p.drawn = true
}

// clear removes the line.
func (p *progressLine) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// bar renders a progress bar of the given width.
func bar(done, total int64, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("-", width) + "]"
	}
	fill := int(float64(width) * float64(min(done, total)) / float64(total))
	return "[" + strings.Repeat("=", fill) + strings.Repeat(" ", width-fill) + "]"
}

// transferStatus renders byte progress with a rate and an estimate.
func (p *progressLine) transferStatus(verb string, done, total, files, filesTotal int64) string {
	el := time.Since(p.start)
	s := fmt.Sprintf("%s %s %s", verb, bar(done, total, 20), bytes(done))
	if total > 0 {
		s += fmt.Sprintf("/%s %3.0f%%", bytes(total), 100*float64(min(done, total))/float64(total))
	}
	if r := rate(done, el); r != "" {
		s += "  " + r
	}
	if filesTotal > 1 {
		s += fmt.Sprintf("  %d/%d files", files, filesTotal)
	}
	if total > 0 && done > 0 && done < total {
		left := time.Duration(float64(el) * float64(total-done) / float64(done))
		s += "  ETA " + left.Round(time.Second).String()
	}
	return s
}

// transferProgress returns a reporter that draws put or get progress on a
// terminal, or nil when progress is not shown.
func (e *runEnv) transferProgress(c *ucli.Context, verb string) func(done bool, bytes, bytesTotal, files, filesTotal int64) {
	if !e.showProgress(c) {
		return nil
	}
	pl := newProgressLine(e.Stderr)
	return func(done bool, bytes, bytesTotal, files, filesTotal int64) {
		if done {
			pl.clear()
			return
		}
		pl.draw(pl.transferStatus(verb, bytes, bytesTotal, files, filesTotal))
	}
}
