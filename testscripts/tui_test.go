package testscripts

// The dashboard in a real pseudo-terminal: the loft binary (TestMain puts
// it on PATH) runs `loft --repo R tui` in a 100x30 pty; the test switches
// screens with number keys and quits with q.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
)

// ptyOutput collects what the program writes to the terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ptyOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// text is the output so far without escape sequences.
func (o *ptyOutput) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return ansi.Strip(o.buf.String())
}

func (o *ptyOutput) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Len()
}

// waitText waits up to limit for every want to be in the output written
// after offset.
func waitText(t *testing.T, out *ptyOutput, offset int, limit time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out.mu.Lock()
		s := ansi.Strip(out.buf.String()[offset:])
		out.mu.Unlock()
		missing := ""
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the terminal does not show %q; it shows:\n%s", limit, missing, out.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logLines matches what a log line or an error would leave on the
// terminal: slog's text format, the standard log package's, quic-go's UDP
// buffer warning, loft's own error lines.
var logLines = regexp.MustCompile(`time=\d|level=(DEBUG|INFO|WARN|ERROR)|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d |receive buffer size|(^|\n)loft: |panic:|goroutine \d+ \[`)

// tuiSession is `loft ARGS... tui` running in a 100x30 pseudo-terminal.
type tuiSession struct {
	t      *testing.T
	cmd    *exec.Cmd
	tty    *os.File
	out    *ptyOutput
	copied chan struct{}
	exited chan error
}

// startTUI starts the dashboard with args before "tui" (--repo R, --node N).
func startTUI(t *testing.T, args ...string) *tuiSession {
	t.Helper()
	cmd := exec.Command("loft", append(args, "tui")...)
	// Debug logging: anything that leaked to the terminal would show.
	cmd.Env = append(childEnv(), "TERM=xterm-256color", "LOFT_LOG_LEVEL=debug")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	s := &tuiSession{t: t, cmd: cmd, tty: tty, out: &ptyOutput{}, copied: make(chan struct{}), exited: make(chan error, 1)}
	go func() {
		defer close(s.copied)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			s.out.Write(buf[:n])
			// Answer as a terminal does: bubbletea's init asks for the
			// background colour (OSC 11) and the cursor position (DSR) and
			// waits up to 5s (termenv.OSCTimeout) for the answers.
			if bytes.Contains(buf[:n], []byte("\x1b]11;?")) {
				tty.Write([]byte("\x1b]11;rgb:0000/0000/0000\x1b\\"))
			}
			if bytes.Contains(buf[:n], []byte("\x1b[6n")) {
				tty.Write([]byte("\x1b[1;1R"))
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		tty.Close()
	})
	return s
}

// press types key and waits for every want to show.
func (s *tuiSession) press(key string, want ...string) {
	s.t.Helper()
	off := s.out.len()
	if _, err := s.tty.Write([]byte(key)); err != nil {
		s.t.Fatal(err)
	}
	waitText(s.t, s.out, off, 20*time.Second, want...)
}

// quit types q and waits for the dashboard to end cleanly.
func (s *tuiSession) quit() {
	t := s.t
	t.Helper()
	if _, err := s.tty.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("loft tui exited %d after q:\n%s", ee.ExitCode(), s.out.text())
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("loft tui still runs 15s after q:\n%s", s.out.text())
	}
	// The pty's reader ends at EOF (or EIO on Linux) once the child is gone.
	select {
	case <-s.copied:
	case <-time.After(5 * time.Second):
	}
}

func TestTUIPseudoTerminal(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	must(t, repo, "init")
	src := t.TempDir()
	for _, f := range []string{"holiday.jpg", "taxes.pdf"} {
		randFile(t, filepath.Join(src, "stuff", f), 50<<10, uint64(len(f)))
	}
	must(t, repo, "put", filepath.Join(src, "stuff"))

	start := time.Now()
	s := startTUI(t, "--repo", repo)
	out := s.out
	// The overview, read directly: no node serves this repository.
	waitText(t, out, 0, 20*time.Second, "1 Overview", "5 Activity", "Disk use", "reading the repository directly")
	t.Logf("first screen after %s", time.Since(start).Round(time.Millisecond))

	s.press("2", "NAME", "stuff/")
	s.press("5", "Activity, newest first", "stored stuff/holiday.jpg")
	s.press("1", "Disk use")
	s.quit()

	if m := logLines.FindString(out.text()); m != "" {
		t.Errorf("something besides the dashboard wrote %q to the terminal:\n%s", m, out.text())
	}
	// The alternate screen is left on the way out.
	if raw := out.buf.String(); !strings.Contains(raw, "\x1b[?1049h") || !strings.Contains(raw, "\x1b[?1049l") {
		t.Errorf("the dashboard did not use and leave the alternate screen")
	}
	if _, err := os.Stat(filepath.Join(repo, "tui.log")); err != nil {
		t.Errorf("no log file in the repository: %v", err)
	}
}
