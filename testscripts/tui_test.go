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

func TestTUIPseudoTerminal(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	must(t, repo, "init")
	src := t.TempDir()
	for _, f := range []string{"holiday.jpg", "taxes.pdf"} {
		randFile(t, filepath.Join(src, "stuff", f), 50<<10, uint64(len(f)))
	}
	must(t, repo, "put", filepath.Join(src, "stuff"))

	cmd := exec.Command("loft", "--repo", repo, "tui")
	// Debug logging: anything that leaked to the terminal would show.
	cmd.Env = append(childEnv(), "TERM=xterm-256color", "LOFT_LOG_LEVEL=debug")
	start := time.Now()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	out := &ptyOutput{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			out.Write(buf[:n])
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
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	// The overview, read directly: no node serves this repository.
	waitText(t, out, 0, 20*time.Second, "1 Overview", "5 Activity", "Disk use", "reading the repository directly")
	t.Logf("first screen after %s", time.Since(start).Round(time.Millisecond))

	press := func(key string, want ...string) {
		t.Helper()
		off := out.len()
		if _, err := tty.Write([]byte(key)); err != nil {
			t.Fatal(err)
		}
		waitText(t, out, off, 20*time.Second, want...)
	}
	press("2", "NAME", "stuff/")
	press("5", "Activity, newest first", "stored stuff/holiday.jpg")
	press("1", "Disk use")

	if _, err := tty.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("loft tui exited %d after q:\n%s", ee.ExitCode(), out.text())
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("loft tui still runs 15s after q:\n%s", out.text())
	}
	// The pty's reader ends at EOF (or EIO on Linux) once the child is gone.
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}

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
