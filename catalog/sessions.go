package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Session is a registered writer. While it lives, GC spares every chunk that
// became garbage at or after change StartSeq, so the writer may rely on any
// chunk it saw referenced, or protected (Tx.Protect), since it started.
//
// Liveness is the process holding an exclusive flock(2) on the session's
// lock file: the kernel drops it when the process dies, even by SIGKILL, so a
// crashed writer never holds GC back and no timeout has to be guessed.
type Session struct {
	ID       string
	PID      int
	Started  time.Time
	StartSeq int64
	What     string

	lock *os.File
	c    *Catalog
}

func (c *Catalog) lockDir() string { return filepath.Join(filepath.Dir(c.path), "locks") }

// BeginSession registers a writer session and takes its lock.
func (c *Catalog) BeginSession(ctx context.Context, what string) (*Session, error) {
	var b [12]byte
	rand.Read(b[:])
	s := &Session{ID: hex.EncodeToString(b[:]), PID: os.Getpid(), What: what, c: c}
	if err := os.MkdirAll(c.lockDir(), 0o755); err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(c.lockDir(), s.ID), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("begin session: lock: %w", err)
	}
	s.lock = f
	err = c.Tx(ctx, func(tx *Tx) error {
		seq, err := lastSeq(ctx, tx)
		if err != nil {
			return err
		}
		s.StartSeq, s.Started = seq, tx.now
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions(id, pid, started, start_seq, what) VALUES (?, ?, ?, ?, ?)`,
			s.ID, s.PID, nanos(s.Started), s.StartSeq, what)
		return err
	})
	if err != nil {
		s.release()
		return nil, fmt.Errorf("begin session: %w", err)
	}
	return s, nil
}

// End unregisters the session. Ending a session of a process that dies
// first is not needed: the next LiveSessions call clears it.
func (s *Session) End(ctx context.Context) error {
	err := s.c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, s.ID)
		return err
	})
	s.release()
	return err
}

func (s *Session) release() {
	if s.lock != nil {
		os.Remove(s.lock.Name())
		s.lock.Close() // drops the flock
		s.lock = nil
	}
}

// LiveSessions returns the sessions whose process still holds its lock,
// deleting the rows of the others. Called inside the transaction that
// sweeps, it gives a view no new session can change before the commit:
// registering a session is itself a write transaction.
func (tx *Tx) LiveSessions(ctx context.Context) ([]Session, error) {
	all, err := sessions(ctx, tx)
	if err != nil {
		return nil, err
	}
	var live []Session
	for _, s := range all {
		alive, err := tx.c.sessionAlive(s.ID)
		if err != nil {
			return nil, err
		}
		if alive {
			live = append(live, s)
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, s.ID); err != nil {
			return nil, err
		}
		os.Remove(filepath.Join(tx.c.lockDir(), s.ID))
	}
	return live, nil
}

// sessionAlive tries the session's lock: if this process can take it, its
// owner is gone. A missing lock file means the owner never finished
// starting or already ended.
func (c *Catalog) sessionAlive(id string) (bool, error) {
	f, err := os.Open(filepath.Join(c.lockDir(), id))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check session %s: %w", id, err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("check session %s: %w", id, err)
	}
	return false, nil // closing f releases the lock we just took
}

// OldestLive returns the smallest StartSeq and Started of sessions, or zeros
// when there are none.
func OldestLive(sessions []Session) (seq int64, started time.Time) {
	for i, s := range sessions {
		if i == 0 || s.StartSeq < seq {
			seq = s.StartSeq
		}
		if i == 0 || s.Started.Before(started) {
			started = s.Started
		}
	}
	return seq, started
}

// Sessions returns the live sessions without clearing dead ones, for reads
// such as a GC preview.
func (c *Catalog) Sessions(ctx context.Context) ([]Session, error) {
	all, err := sessions(ctx, c.r)
	if err != nil {
		return nil, classify(err)
	}
	var live []Session
	for _, s := range all {
		alive, err := c.sessionAlive(s.ID)
		if err != nil {
			return nil, err
		}
		if alive {
			live = append(live, s)
		}
	}
	return live, nil
}

func sessions(ctx context.Context, q querier) ([]Session, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, pid, started, start_seq, what FROM sessions ORDER BY start_seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var all []Session
	for rows.Next() {
		var s Session
		var started int64
		if err := rows.Scan(&s.ID, &s.PID, &started, &s.StartSeq, &s.What); err != nil {
			return nil, err
		}
		s.Started = fromNanos(started)
		all = append(all, s)
	}
	return all, rows.Err()
}
