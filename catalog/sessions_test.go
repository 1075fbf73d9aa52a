package catalog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// helperSession runs in a child process: it opens the catalog, begins a
// session, reports it on stdout and then holds it until its stdin closes or
// it is killed.
func helperSession(path string) int {
	ctx := context.Background()
	c, err := Open(ctx, path, Options{Origin: "helper"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	s, err := c.BeginSession(ctx, "helper process")
	if err != nil {
		fmt.Fprintln(os.Stderr, "begin session:", err)
		return 1
	}
	fmt.Printf("SESSION %s %d\n", s.ID, s.StartSeq)
	io.Copy(io.Discard, os.Stdin) // until the parent closes it or dies
	return 0
}

// startHelper re-executes the test binary in a helper mode.
func startHelper(t *testing.T, mode, path string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(stdout)
}

func sessionIDs(ss []Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func liveSessions(t *testing.T, c *Catalog) []Session {
	t.Helper()
	var live []Session
	err := c.Tx(context.Background(), func(tx *Tx) error {
		var err error
		live, err = tx.LiveSessions(context.Background())
		return err
	})
	if err != nil {
		t.Fatalf("LiveSessions: %v", err)
	}
	return live
}

func TestSessionLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, path := newCatalog(t, Options{Now: clk.Now})
	db := rawDB(t, path)
	lockDir := filepath.Join(filepath.Dir(path), "locks")

	add(t, c, nv("a", "a", 1))
	seq1 := lastChangeSeq(t, c)
	now1 := clk.Advance(time.Minute)
	s1, err := c.BeginSession(ctx, "backup /home")
	if err != nil {
		t.Fatal(err)
	}
	if s1.ID == "" || s1.PID != os.Getpid() || s1.What != "backup /home" || s1.StartSeq != seq1 || !s1.Started.Equal(now1) {
		t.Fatalf("session %+v, want start seq %d at %v", s1, seq1, now1)
	}
	if _, err := os.Stat(filepath.Join(lockDir, s1.ID)); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	if n := rawCount(t, db, `SELECT count(*) FROM sessions WHERE id = ?`, s1.ID); n != 1 {
		t.Fatalf("%d session rows", n)
	}
	if lastChangeSeq(t, c) != seq1 {
		t.Fatal("BeginSession logged a change")
	}

	add(t, c, nv("b", "b", 2))
	now2 := clk.Advance(time.Minute)
	s2, err := c.BeginSession(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	if s2.ID == s1.ID || s2.StartSeq != seq1+1 {
		t.Fatalf("second session %+v", s2)
	}

	check := func(ss []Session, what string) {
		t.Helper()
		if len(ss) != 2 {
			t.Fatalf("%s = %v, want both sessions", what, sessionIDs(ss))
		}
		for _, s := range ss {
			want := s1
			if s.ID == s2.ID {
				want = s2
			}
			if s.ID != want.ID || s.PID != want.PID || s.StartSeq != want.StartSeq || !s.Started.Equal(want.Started) || s.What != want.What {
				t.Fatalf("%s: %+v, want %+v", what, s, want)
			}
		}
	}
	ss, err := c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(ss, "Sessions")
	check(liveSessions(t, c), "LiveSessions")
	seq, started := OldestLive(ss)
	if seq != seq1 || !started.Equal(now1) {
		t.Fatalf("OldestLive = %d, %v; want %d, %v", seq, started, seq1, now1)
	}

	if err := s1.End(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(lockDir, s1.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock file after End: %v", err)
	}
	if n := rawCount(t, db, `SELECT count(*) FROM sessions WHERE id = ?`, s1.ID); n != 0 {
		t.Fatal("session row left after End")
	}
	ss, _ = c.Sessions(ctx)
	if len(ss) != 1 || ss[0].ID != s2.ID {
		t.Fatalf("Sessions after End = %v", sessionIDs(ss))
	}
	if seq, started := OldestLive(ss); seq != s2.StartSeq || !started.Equal(now2) {
		t.Fatalf("OldestLive = %d, %v", seq, started)
	}
	if err := s2.End(ctx); err != nil {
		t.Fatal(err)
	}
	if ss, _ := c.Sessions(ctx); len(ss) != 0 {
		t.Fatalf("Sessions after both ended = %v", sessionIDs(ss))
	}
	if live := liveSessions(t, c); len(live) != 0 {
		t.Fatalf("LiveSessions after both ended = %v", sessionIDs(live))
	}
}

func TestOldestLive(t *testing.T) {
	if seq, started := OldestLive(nil); seq != 0 || !started.IsZero() {
		t.Fatalf("OldestLive(nil) = %d, %v", seq, started)
	}
	// The smallest sequence and the earliest start may be different sessions.
	ss := []Session{
		{StartSeq: 9, Started: t0.Add(3 * time.Hour)},
		{StartSeq: 4, Started: t0.Add(2 * time.Hour)},
		{StartSeq: 7, Started: t0.Add(time.Hour)},
		{StartSeq: 5, Started: t0.Add(4 * time.Hour)},
	}
	if seq, started := OldestLive(ss); seq != 4 || !started.Equal(t0.Add(time.Hour)) {
		t.Fatalf("OldestLive = %d, %v", seq, started)
	}
}

// TestSessionDeadWithoutLockFile: a row whose lock file is gone (its
// process never finished starting, or was cleaned up) is dead.
func TestSessionDeadWithoutLockFile(t *testing.T) {
	ctx := context.Background()
	c, path := newCatalog(t, Options{})
	db := rawDB(t, path)
	if _, err := db.Exec(`INSERT INTO sessions(id, pid, started, start_seq) VALUES ('ghost', 1, 1, 0)`); err != nil {
		t.Fatal(err)
	}
	// A lock file nobody holds: its process died.
	lockDir := filepath.Join(filepath.Dir(path), "locks")
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lockDir, "orphan"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sessions(id, pid, started, start_seq) VALUES ('orphan', 1, 1, 0)`); err != nil {
		t.Fatal(err)
	}
	if ss, err := c.Sessions(ctx); err != nil || len(ss) != 0 {
		t.Fatalf("Sessions = %v, %v", sessionIDs(ss), err)
	}
	if n := rawCount(t, db, `SELECT count(*) FROM sessions`); n != 2 {
		t.Fatalf("Sessions (a read) removed rows: %d left", n)
	}
	if live := liveSessions(t, c); len(live) != 0 {
		t.Fatalf("LiveSessions = %v", sessionIDs(live))
	}
	if n := rawCount(t, db, `SELECT count(*) FROM sessions`); n != 0 {
		t.Fatalf("%d dead session rows left", n)
	}
	if _, err := os.Stat(filepath.Join(lockDir, "orphan")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dead session's lock file: %v", err)
	}
}

// TestSessionKilledProcess holds a session in a child process, checks this
// process sees it as live, kills the child with SIGKILL and checks the
// kernel's release of the flock is what ends it.
func TestSessionKilledProcess(t *testing.T) {
	ctx := context.Background()
	c, path := newCatalog(t, Options{})
	db := rawDB(t, path)
	own, err := c.BeginSession(ctx, "own")
	if err != nil {
		t.Fatal(err)
	}
	defer own.End(ctx)

	cmd, out := startHelper(t, "session", path)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper process: %v (output %q)", err, line)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "SESSION" {
		t.Fatalf("helper process said %q", line)
	}
	id := f[1]
	if _, err := strconv.ParseInt(f[2], 10, 64); err != nil {
		t.Fatalf("helper process said %q", line)
	}

	ss, err := c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sessionIDs(ss), ","); !strings.Contains(got, id) || len(ss) != 2 {
		t.Fatalf("Sessions = %v, want own and the helper's %s", got, id)
	}
	for _, s := range ss {
		if s.ID == id && (s.PID != cmd.Process.Pid || s.What != "helper process") {
			t.Fatalf("helper session %+v (helper pid %d)", s, cmd.Process.Pid)
		}
	}
	if live := liveSessions(t, c); len(live) != 2 {
		t.Fatalf("LiveSessions while the helper runs = %v", sessionIDs(live))
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper exit: %v", err)
	}

	ss, err = c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].ID != own.ID {
		t.Fatalf("Sessions after the kill = %v, want only %s", sessionIDs(ss), own.ID)
	}
	if n := rawCount(t, db, `SELECT count(*) FROM sessions WHERE id = ?`, id); n != 1 {
		t.Fatal("Sessions, a read, removed the dead row")
	}
	live := liveSessions(t, c)
	if len(live) != 1 || live[0].ID != own.ID {
		t.Fatalf("LiveSessions after the kill = %v", sessionIDs(live))
	}
	if n := rawCount(t, db, `SELECT count(*) FROM sessions WHERE id = ?`, id); n != 0 {
		t.Fatal("LiveSessions left the dead session's row")
	}
	lock := filepath.Join(filepath.Dir(path), "locks", id)
	if _, err := os.Stat(lock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dead session's lock file: %v", err)
	}
}

// TestSessionGCRule: with a live session that started at S, garbage zeroed
// before S is swept unless protected, garbage zeroed after S is spared.
func TestSessionGCRule(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c, _ := newCatalog(t, Options{Now: clk.Now})
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("a", "1", 1))
	add(t, c, nv("a", "2", 2)) // chunk 1 garbage
	z1 := lastChangeSeq(t, c)
	add(t, c, nv("b", "1", 3)) // a later change, so the session starts after z1
	clk.Advance(time.Minute)

	s, err := c.BeginSession(ctx, "writer")
	if err != nil {
		t.Fatal(err)
	}
	defer s.End(ctx)
	S := s.StartSeq
	if S <= z1 {
		t.Fatalf("session start seq %d, chunk zeroed at %d", S, z1)
	}
	clk.Advance(time.Minute)
	add(t, c, nv("a", "3", 4)) // chunk 2 garbage, after S
	if st, _ := c.Lookup(ctx, cid(2)); st.Refs != 0 || st.ZeroSeq <= S {
		t.Fatalf("chunk 2 %+v, want zeroed after %d", st, S)
	}

	far := t0.Add(1000 * time.Hour)
	listed := func(rule SweepRule) map[int]bool {
		t.Helper()
		gs, err := c.Garbage(ctx, rule, 100)
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[int]bool)
		for _, g := range gs {
			for i := range 10 {
				if g.ID == cid(i) {
					out[i] = true
				}
			}
		}
		return out
	}
	ss, err := c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	below, _ := OldestLive(ss)
	if below != S {
		t.Fatalf("OldestLive = %d, want %d", below, S)
	}
	rule := SweepRule{Before: far, Live: true, BelowSeq: below}
	if got := listed(rule); !got[1] || got[2] || len(got) != 1 {
		t.Fatalf("with a session at %d, garbage is %v; want chunk 1 only", S, got)
	}
	if got := listed(SweepRule{Before: far}); !got[1] || !got[2] {
		t.Fatalf("with no session, garbage is %v; want chunks 1 and 2", got)
	}

	protect := func(i int) bool {
		t.Helper()
		var ok bool
		err := c.Tx(ctx, func(tx *Tx) error {
			var err error
			ok, err = tx.Protect(ctx, cid(i), S)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !protect(1) {
		t.Fatal("Protect of an unreferenced chunk reported no row")
	}
	if st, _ := c.Lookup(ctx, cid(1)); st.ZeroSeq != S || st.Refs != 0 {
		t.Fatalf("chunk 1 after Protect: %+v, want zero seq %d", st, S)
	}
	if got := listed(rule); len(got) != 0 {
		t.Fatalf("after Protect, garbage is %v; want none", got)
	}
	tot, err := c.GarbageTotals(ctx, rule)
	if err != nil || tot.Chunks != 2 || tot.ReclaimChunks != 0 {
		t.Fatalf("GarbageTotals = %+v, %v", tot, err)
	}
	// Protect never lowers a stamp, and leaves referenced chunks alone.
	before, _ := c.Lookup(ctx, cid(2))
	if !protect(2) {
		t.Fatal("Protect(2) reported no row")
	}
	if st, _ := c.Lookup(ctx, cid(2)); st != before {
		t.Fatalf("Protect lowered chunk 2: %+v -> %+v", before, st)
	}
	if !protect(3) {
		t.Fatal("Protect of a referenced chunk reported no row")
	}
	if st, _ := c.Lookup(ctx, cid(3)); st.Refs != 1 || st.ZeroSeq != 0 {
		t.Fatalf("Protect changed a referenced chunk: %+v", st)
	}
	if protect(99) {
		t.Fatal("Protect of an unknown chunk reported a row")
	}
	// Once the session ends the rule has no sequence bound: both go.
	if err := s.End(ctx); err != nil {
		t.Fatal(err)
	}
	below, _ = OldestLive(liveSessions(t, c))
	if got := listed(SweepRule{Before: far, BelowSeq: below}); !got[1] || !got[2] {
		t.Fatalf("after End, garbage is %v", got)
	}
}

// TestSessionGCRuleFirstSession: the first session of a new repository
// starts at change 0, and still protects what becomes garbage after it.
func TestSessionGCRuleFirstSession(t *testing.T) {
	ctx := context.Background()
	c, err := Create(ctx, filepath.Join(t.TempDir(), "catalog.db"), nil, Options{Origin: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.BeginSession(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	defer s.End(ctx)
	if s.StartSeq != 0 {
		t.Fatalf("first session starts at %d", s.StartSeq)
	}
	err = c.Tx(ctx, func(tx *Tx) error {
		if err := tx.SetConfig(ctx, "keep-versions", "1"); err != nil {
			return err
		}
		id := sumOf("zero")
		if _, err := tx.AddVersion(ctx, NewVersion{Name: names.Must("a"), Chunks: []ChunkRef{{ID: id, Plain: 4, Stored: 16}}}); err != nil {
			return err
		}
		_, err := tx.Delete(ctx, names.Must("a"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := c.Sessions(ctx)
	seq, _ := OldestLive(ss)
	far := time.Now().Add(time.Hour)
	if g, _ := c.Garbage(ctx, SweepRule{Before: far, Live: len(ss) > 0, BelowSeq: seq}, 10); len(g) != 0 {
		t.Fatalf("garbage made during the first session is sweepable: %d chunks", len(g))
	}
}

func sumOf(s string) store.ID { return store.Sum([]byte(s)) }
