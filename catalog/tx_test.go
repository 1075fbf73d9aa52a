package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
)

// TestBusy: a second catalog on the same file cannot write while the first
// holds a transaction open; after its busy timeout the write fails with
// ErrBusy. Reads go on beside the writer.
func TestBusy(t *testing.T) {
	ctx := context.Background()
	c1, path := newCatalog(t, Options{})
	add(t, c1, nv("before", "x", 1))
	c2, err := Open(ctx, path, Options{Origin: "other", BusyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()

	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c1.Tx(ctx, func(tx *Tx) error {
			if _, err := tx.AddVersion(ctx, nv("held", "x", 2)); err != nil {
				return err
			}
			close(started)
			<-release
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("holding transaction failed: %v", err)
	}

	err = c2.Tx(ctx, func(tx *Tx) error {
		_, err := tx.AddVersion(ctx, nv("blocked", "x", 3))
		return err
	})
	if !errors.Is(err, ErrBusy) {
		t.Errorf("write while another catalog holds the lock: %v, want ErrBusy", err)
	}
	// A session needs a write too.
	if s, err := c2.BeginSession(ctx, "blocked"); !errors.Is(err, ErrBusy) {
		if s != nil {
			s.End(ctx)
		}
		t.Errorf("BeginSession while another catalog holds the lock: %v, want ErrBusy", err)
	}
	// Reads still work, and do not see the uncommitted version.
	if _, err := c2.Head(ctx, names.Must("before")); err != nil {
		t.Errorf("read beside the writer: %v", err)
	}
	if _, err := c2.Head(ctx, names.Must("held")); !errors.Is(err, ErrNotFound) {
		t.Errorf("uncommitted version visible to another catalog: %v", err)
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatalf("holding transaction: %v", err)
	}
	add(t, c2, nv("after", "x", 4))
	for _, n := range []string{"before", "held", "after"} {
		if _, err := c1.Head(ctx, names.Must(n)); err != nil {
			t.Errorf("Head(%s): %v", n, err)
		}
	}
	if _, err := c1.Head(ctx, names.Must("blocked")); !errors.Is(err, ErrNotFound) {
		t.Errorf("the busy write left %q behind: %v", "blocked", err)
	}
	if ss, _ := c1.Sessions(ctx); len(ss) != 0 {
		t.Errorf("the busy BeginSession left sessions %v", sessionIDs(ss))
	}
}

// TestTxRollback: fn's error undoes everything fn did and is returned.
func TestTxRollback(t *testing.T) {
	ctx := context.Background()
	c, path := newCatalog(t, Options{})
	add(t, c, nv("keep", "x", 1))
	db := rawDB(t, path)
	seq := lastChangeSeq(t, c)
	boom := errors.New("boom")
	err := c.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.AddVersion(ctx, nv("gone", "x", 2, 3)); err != nil {
			return err
		}
		if _, err := tx.Delete(ctx, names.Must("keep")); err != nil {
			return err
		}
		if err := tx.SetConfig(ctx, "keep-versions", "2"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx returned %v, want fn's error", err)
	}
	if _, err := c.Head(ctx, names.Must("gone")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rolled back version visible: %v", err)
	}
	if h, _ := c.Head(ctx, names.Must("keep")); h.Deleted {
		t.Fatal("rolled back delete visible")
	}
	if v, _ := c.Config(ctx, "keep-versions"); v != "10" {
		t.Fatalf("rolled back config visible: %s", v)
	}
	if lastChangeSeq(t, c) != seq || rawCount(t, db, `SELECT count(*) FROM chunks`) != 1 {
		t.Fatal("rolled back changes or chunks visible")
	}
}

// helperCanceledQuery runs in a child process: a transaction whose context
// is canceled while it runs must fail with an error, not crash.
func helperCanceledQuery(path string) int {
	// A runaway recursion should die quickly, not after eating 1 GB.
	debug.SetMaxStack(64 << 20)
	c, err := Open(context.Background(), path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	err = c.Tx(ctx, func(tx *Tx) error {
		cancel()
		_, err := tx.AddVersion(ctx, nv("x", "x", 1))
		return err
	})
	fmt.Printf("RESULT canceled=%v err=%v\n", errors.Is(err, context.Canceled), err)
	return 0
}

// TestTxCanceledContext: when the context of a transaction is canceled,
// preparing a statement fails; Tx.QueryRowContext must report that, not
// recurse into itself until the stack overflows and kills the process.
func TestTxCanceledContext(t *testing.T) {
	_, path := newCatalog(t, Options{})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=canceledQuery", helperPathEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.SplitN(string(out), "\n", 4)
		t.Fatalf("helper process died: %v:\n%s", err, strings.Join(lines[:min(3, len(lines))], "\n"))
	}
	if !strings.Contains(string(out), "RESULT canceled=true") {
		t.Fatalf("helper process said %q, want a context.Canceled error", out)
	}
}

// TestTxPanicReleasesWriter: a panic in fn (recovered by the caller, as
// net/http does for handlers) must not leave the single writer connection
// checked out, or every later write waits forever.
func TestTxPanicReleasesWriter(t *testing.T) {
	c, _ := newCatalog(t, Options{})
	func() {
		defer func() { recover() }()
		c.Tx(context.Background(), func(tx *Tx) error {
			if _, err := tx.AddVersion(context.Background(), nv("before", "x", 1)); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	// The deadline only keeps a hang from stalling the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.AddVersion(ctx, nv("after", "x", 1))
		return err
	})
	if err != nil {
		t.Fatalf("write after a panicking transaction: %v", err)
	}
	if _, err := c.Head(ctx, names.Must("before")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the panicking transaction's write: %v, want it rolled back (ErrNotFound)", err)
	}
}

// TestTxFailedCommit: a COMMIT that fails (here a deferred foreign key
// that does not hold) leaves nothing of the transaction, and the writer
// connection is not handed on inside a transaction that is still open.
func TestTxFailedCommit(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	err := c.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.AddVersion(ctx, nv("lost", "x", 1)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO version_chunks(version_id, idx, chunk_id) VALUES (999999, 0, 999999)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "commit") {
		t.Fatalf("commit of a transaction that breaks a deferred foreign key: %v, want a failed commit", err)
	}
	if err := c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.AddVersion(ctx, nv("kept", "y", 2))
		return err
	}); err != nil {
		t.Fatalf("write after a failed commit: %v", err)
	}
	if _, err := c.Head(ctx, names.Must("lost")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed transaction's write: %v, want it rolled back (ErrNotFound)", err)
	}
	if _, err := c.Head(ctx, names.Must("kept")); err != nil {
		t.Fatalf("the write after it: %v", err)
	}
}
