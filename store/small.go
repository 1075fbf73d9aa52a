package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SmallMax is the largest stored chunk (header included) that a Disk keeps
// as a row of its small-chunk database instead of a file of its own, by
// default (the small-chunk-max setting).
// Chosen by measurement (README, "Small chunks"): below it a file costs a
// directory entry, an inode and a partly used block, and its write an
// open, a flush and a rename, where a row shares its pages with others and
// its commit with the whole batch.
const SmallMax = 64 << 10

// smallFile is the small-chunk database, beside the chunk directories.
const smallFile = "small.db"

// smallStage is how many bytes of small chunks a batch holds in memory
// before it appends them to its staging file.
const smallStage = 2 << 20

// smallSchema makes the database. auto_vacuum, which only an empty
// database takes, lets compact give the pages of removed chunks back to
// the file system: rm and gc free space on a full disk.
const smallSchema = `
PRAGMA auto_vacuum = INCREMENTAL;
CREATE TABLE IF NOT EXISTS chunks (
	id      INTEGER PRIMARY KEY,
	hash    BLOB NOT NULL UNIQUE,
	data    BLOB NOT NULL,
	written INTEGER NOT NULL
);`

// small is the part of a Disk that keeps small chunks, in the same format
// as a chunk file, as rows of one SQLite database. A row is a chunk under
// its final name, as a file is: complete, and durable once its batch
// committed (every commit is one synced transaction). Until then a batch
// holds its small chunks in memory and, past smallStage bytes, in a
// staging file of the store's tmp directory: nothing of an uncommitted
// batch is in the database, so an abort (a full disk, a stop) gives all
// its room back, and CleanTemp removes a dead writer's staging file with
// the other temporary files.
//
// The database is opened on first use, and created on the first write:
// reading a store that never held a small chunk creates nothing.
type small struct {
	path string

	mu        sync.Mutex
	w, r      *sql.DB   // w: one connection, writes; r: readers
	get1, st1 *sql.Stmt // prepared on r: a tree's restore reads thousands
}

func smallDSN(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "synchronous(FULL)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		// The log shrinks back to this after a checkpoint: a commit of a
		// large batch does not keep its size on disk.
		q.Add("_pragma", "journal_size_limit(4194304)")
		q.Set("_txlock", "immediate")
		q.Add("_pragma", "cache_size(-512)") // as the catalog's writer: RSS, not speed
	} else {
		q.Add("_pragma", "query_only(1)")
		q.Add("_pragma", "cache_size(-256)") // lookups by key: a small cache each
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// dbs returns the database's handles, opening it first; with create, the
// file and its tables are made if missing. Without, a missing file is
// (nil, nil, nil): no small chunk was ever stored.
func (s *small) dbs(create bool) (w, r *sql.DB, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		return s.w, s.r, nil
	}
	if !create {
		if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
	}
	w, err = sql.Open("sqlite", smallDSN(s.path, true))
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", s.path, err)
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(smallSchema); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("open %s: %w", s.path, smallErr(err))
	}
	r, err = sql.Open("sqlite", smallDSN(s.path, false))
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("open %s: %w", s.path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4) // kept open: an idle process writes nothing (see catalog.OpenReaders)
	if s.get1, err = r.Prepare(`SELECT data FROM chunks WHERE hash = ?`); err == nil {
		s.st1, err = r.Prepare(`SELECT length(data), written FROM chunks WHERE hash = ?`)
	}
	if err != nil {
		r.Close()
		w.Close()
		return nil, nil, fmt.Errorf("open %s: %w", s.path, smallErr(err))
	}
	s.w, s.r = w, r
	return w, r, nil
}

func (s *small) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	err := errors.Join(s.get1.Close(), s.st1.Close(), s.r.Close(), s.w.Close())
	s.w, s.r = nil, nil
	return err
}

// smallErr gives SQLite's full disk and I/O failures the errors the rest
// of loft knows them by.
func smallErr(err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	switch {
	case se.Code() == sqlite3.SQLITE_IOERR_SHMSIZE, se.Code()&0xff == sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", syscall.ENOSPC, err)
	case se.Code()&0xff == sqlite3.SQLITE_CORRUPT, se.Code()&0xff == sqlite3.SQLITE_NOTADB:
		return &IntegrityError{Reason: "small-chunk database: " + err.Error()}
	}
	return err
}

// get returns a chunk's stored bytes, in buf when it can hold them, or
// ErrNotFound.
func (s *small) get(ctx context.Context, id ID, buf []byte) ([]byte, error) {
	_, r, err := s.dbs(false)
	if err != nil {
		return nil, err // a database that cannot be opened is not an absent chunk
	}
	if r == nil {
		return nil, ErrNotFound
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A lookup by key is short: no goroutine watching a cancellable context.
	rows, err := s.get1.QueryContext(context.WithoutCancel(ctx), id[:])
	if err != nil {
		return nil, smallErr(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, smallErr(err)
		}
		return nil, ErrNotFound
	}
	var raw sql.RawBytes
	if err := rows.Scan(&raw); err != nil {
		return nil, smallErr(err)
	}
	return append(buf[:0], raw...), nil
}

func (s *small) stat(ctx context.Context, id ID) (Info, error) {
	_, r, err := s.dbs(false)
	if err != nil {
		return Info{}, err
	}
	if r == nil {
		return Info{}, ErrNotFound
	}
	var size, written int64
	err = s.st1.QueryRowContext(ctx, id[:]).Scan(&size, &written)
	if errors.Is(err, sql.ErrNoRows) {
		return Info{}, ErrNotFound
	}
	return Info{ID: id, Stored: size, ModTime: time.Unix(0, written)}, smallErr(err)
}

// remove deletes the chunk's row, only if it was written before cutoff
// when cutoff is set; it reports whether a row went. One statement: a
// writer's commit of the same chunk lands before it (and is newer than
// any cutoff in the past) or after it (and stays).
func (s *small) remove(ctx context.Context, id ID, cutoff time.Time) (bool, error) {
	w, _, err := s.dbs(false)
	if err != nil || w == nil {
		return false, err
	}
	q, args := `DELETE FROM chunks WHERE hash = ?`, []any{id[:]}
	if !cutoff.IsZero() {
		q, args = q+` AND written < ?`, append(args, cutoff.UnixNano())
	}
	res, err := w.ExecContext(ctx, q, args...)
	if err != nil {
		return false, smallErr(err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// walk lists the small chunks, a page at a time: fn may remove chunks.
func (s *small) walk(ctx context.Context, fn func(Info) error) error {
	_, r, err := s.dbs(false)
	if err != nil || r == nil {
		return err
	}
	const page = 1024
	var after int64
	for {
		rows, err := r.QueryContext(ctx, `SELECT id, hash, length(data), written FROM chunks WHERE id > ? ORDER BY id LIMIT ?`, after, page)
		if err != nil {
			return smallErr(err)
		}
		var infos []Info
		for rows.Next() {
			var h []byte
			var in Info
			var written int64
			if err := rows.Scan(&after, &h, &in.Stored, &written); err != nil {
				rows.Close()
				return smallErr(err)
			}
			if len(h) != len(in.ID) {
				continue // not a chunk's name
			}
			copy(in.ID[:], h)
			in.ModTime = time.Unix(0, written)
			infos = append(infos, in)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return smallErr(err)
		}
		for _, in := range infos {
			if err := fn(in); err != nil {
				return err
			}
		}
		if len(infos) < page {
			return nil
		}
	}
}

// compact gives the pages that removed rows left free back to the file
// system, and empties the write-ahead log.
func (s *small) compact(ctx context.Context) error {
	w, _, err := s.dbs(false)
	if err != nil || w == nil {
		return err
	}
	if _, err := w.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
		return fmt.Errorf("compact %s: %w", s.path, smallErr(err))
	}
	if _, err := w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("compact %s: %w", s.path, smallErr(err))
	}
	return nil
}

// smallChunk is a small chunk a batch holds until it commits it.
type smallChunk struct {
	id   ID
	data []byte // header and payload
}

// smallBatch is the small-chunk side of a disk batch.
type smallBatch struct {
	s     *small
	tmp   string // the staging file's directory
	mu    sync.Mutex
	held  []smallChunk
	bytes int
	stage *os.File // chunks past smallStage bytes, until commit
	err   error    // a failed staging write: the batch is unusable
}

// add holds a chunk; past smallStage bytes, the held chunks go to the
// staging file (id, length, stored bytes, each).
func (b *smallBatch) add(c smallChunk) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.held = append(b.held, c)
	b.bytes += len(c.data)
	if b.bytes < smallStage {
		return nil
	}
	if b.stage == nil {
		f, err := os.CreateTemp(b.tmp, tmpPrefix+"small-*")
		if err != nil {
			b.err = err
			return err
		}
		b.stage = f
	}
	w := bufio.NewWriterSize(b.stage, 256<<10)
	for _, h := range b.held {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(h.data)))
		w.Write(h.id[:])
		w.Write(n[:])
		w.Write(h.data)
	}
	if err := w.Flush(); err != nil {
		// What the file holds is not known: the batch fails, and every
		// commit of it says so (never a commit without these chunks).
		b.err = err
		return err
	}
	b.held, b.bytes = nil, 0
	return nil
}

// commit makes every chunk of the batch a durable row under its name, in
// one synced transaction: the staged ones, then the held ones.
func (b *smallBatch) commit(ctx context.Context) error {
	// Taken out under the lock, so that adds go on during the commit (into
	// the next one).
	b.mu.Lock()
	if b.err != nil {
		defer b.mu.Unlock()
		return b.err
	}
	held, stage := b.held, b.stage
	b.held, b.bytes, b.stage = nil, 0, nil
	b.mu.Unlock()
	if len(held) == 0 && stage == nil {
		return nil
	}
	defer dropStage(stage)
	w, _, err := b.s.dbs(true)
	if err != nil {
		return err
	}
	err = smallTx(ctx, w, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		// A chunk already there is written again, as a file is when a
		// writer renames a fresh copy over it: a damaged copy is replaced,
		// and a sweep that judged it old spares it now.
		ins, err := tx.PrepareContext(ctx, `INSERT INTO chunks(hash, data, written) VALUES (?, ?, ?)
			ON CONFLICT(hash) DO UPDATE SET data = excluded.data, written = excluded.written`)
		if err != nil {
			return err
		}
		defer ins.Close()
		if stage != nil {
			if _, err := stage.Seek(0, io.SeekStart); err != nil {
				return err
			}
			r := bufio.NewReaderSize(stage, 256<<10)
			for {
				var id ID
				var n [4]byte
				if _, err := io.ReadFull(r, id[:]); err == io.EOF {
					break
				} else if err != nil {
					return fmt.Errorf("staged small chunks: %w", err)
				}
				if _, err := io.ReadFull(r, n[:]); err != nil {
					return fmt.Errorf("staged small chunks: %w", err)
				}
				size := binary.LittleEndian.Uint32(n[:])
				if size > MaxStoredSize {
					return fmt.Errorf("staged small chunks: a record of %d bytes", size)
				}
				data := make([]byte, size)
				if _, err := io.ReadFull(r, data); err != nil {
					return fmt.Errorf("staged small chunks: %w", err)
				}
				if _, err := ins.ExecContext(ctx, id[:], data, now); err != nil {
					return err
				}
			}
		}
		for _, c := range held {
			if _, err := ins.ExecContext(ctx, c.id[:], c.data, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// What a failed write grew the log by goes back to the disk.
		b.s.compact(context.WithoutCancel(ctx))
	}
	return err
}

// abort drops what the batch holds and staged.
func (b *smallBatch) abort() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held, b.bytes = nil, 0
	dropStage(b.stage)
	b.stage = nil
}

// dropStage removes a staging file, if there is one.
func dropStage(f *os.File) {
	if f != nil {
		f.Close()
		os.Remove(f.Name())
	}
}

func smallTx(ctx context.Context, w *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return smallErr(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("small-chunk database: %w", smallErr(err))
	}
	return smallErr(tx.Commit())
}

func smallPath(root string) string { return filepath.Join(root, smallFile) }
