package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// This file runs loft nodes: `loft serve` processes on loopback, paired
// with one another, for the peers section.

// phaseTimeout bounds one phase that moves n bytes: a minute, plus the
// bytes at 5 MB/s, far below any speed worth reporting.
func phaseTimeout(n int64) time.Duration {
	return time.Minute + time.Duration(n/5e6)*time.Second
}

// server is one running `loft serve`.
type server struct {
	name, repo string
	id, addr   string
	s3         string // the S3 gateway's address, with --s3
	cmd        *exec.Cmd
	done       chan struct{} // closed when the process has exited
	log        string        // its standard error
	hwmReset   bool          // the last resetPeak worked
}

// loftEnv is the environment of every loft process: the bench's, without
// settings that would point a command elsewhere.
func loftEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LOFT_NODE=") || strings.HasPrefix(kv, "LOFT_REPO=") || strings.HasPrefix(kv, "LOFT_LOG_LEVEL=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LOFT_LOG_LEVEL=warn")
}

// loftCmd runs a short loft command (no sync first, unlike runLoft: it is
// not timed) and returns its standard output.
func (b *bench) loftCmd(ctx context.Context, repo string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.loft, append([]string{"--repo", repo, "--quiet"}, args...)...)
	cmd.Env = loftEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("loft --repo %s %s: %w\n%s", filepath.Base(repo), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func (b *bench) nodeID(ctx context.Context, repo string) (string, error) {
	out, err := b.loftCmd(ctx, repo, "id")
	return strings.TrimSpace(string(out)), err
}

// serve starts `loft serve` on a free loopback port (with extra flags,
// such as --s3) and waits for the lines that say where it listens.
func (b *bench) serve(ctx context.Context, name, repo string, extra ...string) (*server, error) {
	s := &server{name: name, repo: repo, done: make(chan struct{}), log: repo + ".serve.log"}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(b.loft, append([]string{"--repo", repo, "serve", "--listen", "127.0.0.1:0"}, extra...)...)
	s.cmd.Env = loftEnv()
	s.cmd.Stderr = logf
	// Should the bench die, the node goes too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	lines := make(chan string, 2)
	go func() {
		r := bufio.NewReader(stdout)
		for range 2 {
			line, err := r.ReadString('\n')
			lines <- line
			if err != nil {
				break
			}
		}
		io.Copy(io.Discard, r)
	}()
	wantS3 := slices.Contains(extra, "--s3")
	timeout := time.After(30 * time.Second)
	for s.addr == "" || wantS3 && s.s3 == "" {
		var line string
		select {
		case line = <-lines:
		case <-timeout:
		case <-ctx.Done():
		}
		// "serving ID on ADDR" or "serving S3 on ADDR"
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "serving" || f[2] != "on" {
			s.stop()
			return nil, fmt.Errorf("loft serve on %s: printed %q\n%s", name, line, s.logTail())
		}
		if f[1] == "S3" {
			s.s3 = f[3]
		} else {
			s.id, s.addr = f[1], f[3]
		}
	}
	return s, nil
}

// stop ends the process: SIGTERM, then SIGKILL if it has not exited after
// ten seconds.
func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "bench: loft serve on %s ignored SIGTERM for 10s; killing it\n", s.name)
		s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("loft serve on %s exited: %v\n%s", s.name, s.cmd.ProcessState, s.logTail())
	default:
		return nil
	}
}

// logTail returns the last lines the server logged.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// resetPeak sets the process's peak RSS (VmHWM) to its current RSS, so the
// next peak read covers one phase only.
func (s *server) resetPeak() {
	s.hwmReset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0) == nil
}

// peakRSS returns the process's peak RSS since resetPeak (or since it
// started, when the reset failed).
func (s *server) peakRSS() int64 { return vmHWM(s.cmd.Process.Pid) }

func resetPeaks(ss ...*server) {
	for _, s := range ss {
		s.resetPeak()
	}
}

// peaks returns the highest peak RSS among servers, and whether each was
// reset at the start of the phase.
func peaks(ss ...*server) (int64, bool) {
	var m int64
	reset := true
	for _, s := range ss {
		m = max(m, s.peakRSS())
		reset = reset && s.hwmReset
	}
	return m, reset
}

// statusJSON is the part of `loft status --json` the bench reads.
type statusJSON struct {
	Node struct {
		Chunks int64 `json:"chunks"`
	} `json:"node"`
	Peers []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"peers"`
	Replication struct {
		Chunks   int64 `json:"chunks"`
		Below    int64 `json:"below"`
		Unplaced int64 `json:"unplaced"`
	} `json:"replication"`
}

func (b *bench) status(ctx context.Context, repo string) (statusJSON, error) {
	var st statusJSON
	out, err := b.loftCmd(ctx, repo, "status", "--json")
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	return st, err
}

var errTimeout = errors.New("timed out")

// waitFor polls cond every interval until it is true, returns an error, or
// timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return errTimeout
		case <-t.C:
		}
	}
}

// invite pairs joiner with inviter in one step: a token from the serving
// inviter, accepted by the joiner, which gives its own serving address.
func (b *bench) invite(ctx context.Context, inviter, joiner *server) error {
	out, err := b.loftCmd(ctx, inviter.repo, "invite", "--addr", inviter.addr)
	if err != nil {
		return err
	}
	_, err = b.loftCmd(ctx, joiner.repo, "join", strings.TrimSpace(string(out)), "--addr", joiner.addr)
	return err
}

func (b *bench) configure(ctx context.Context, repo string, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := b.loftCmd(ctx, repo, "config", "set", kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// lists reports whether a name is among a repository's objects.
func (b *bench) lists(ctx context.Context, repo, name string) (bool, error) {
	out, err := b.loftCmd(ctx, repo, "ls", "--json")
	if err != nil {
		return false, err
	}
	var entries []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Name == name {
			return true, nil
		}
	}
	return false, nil
}
