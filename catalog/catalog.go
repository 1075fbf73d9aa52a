// Package catalog is loft's metadata plane: objects, versions, chunk
// reference counts, the change log and write sessions, kept in SQLite
// (modernc.org/sqlite, no cgo). It decides nothing about chunk files: the
// node composes it with the store inside its transactions.
package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loftstore/loft/fault"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Format is the repository format this code writes and the newest it reads.
const Format = 1

var (
	// ErrNoCatalog means there is no catalog file at the path.
	ErrNoCatalog = fault.New(fault.Repository, "no catalog")
	// ErrNewerFormat means the repository was written by a newer loft.
	ErrNewerFormat = fault.New(fault.Repository, "repository format is newer than this loft")
	// ErrCorrupt means SQLite found the catalog file damaged or not a database.
	ErrCorrupt = fault.New(fault.Repository, "catalog is corrupt")
	// ErrBusy means another process held the write lock for the whole busy timeout.
	ErrBusy = fault.New(fault.Busy, "catalog is busy")
	// ErrNotFound means the object or version does not exist.
	ErrNotFound = fault.New(fault.NotFound, "not found")
	// ErrDeleted means the object's newest version is a tombstone.
	ErrDeleted = fault.New(fault.Deleted, "object is deleted")
)

// Options configure Open and Create.
type Options struct {
	// Origin is this node's ID, recorded with every change and version.
	Origin string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// BusyTimeout is how long a write waits for another writer; zero means 30s.
	BusyTimeout time.Duration
}

// Catalog is an open catalog. It is safe for concurrent use; writes are
// serialised by SQLite (one writer at a time, across processes too).
type Catalog struct {
	path   string
	w      *sql.DB     // the single writer connection: every Tx is BEGIN IMMEDIATE
	r      *preparedDB // readers, which WAL lets run beside the writer
	origin string
	now    func() time.Time
}

// preparedDB runs each query through a statement prepared once (per
// connection, by database/sql) and kept: parsing a query costs more than
// running the small ones a put makes per file, and far more than the
// repeated lookups of a tree's worth of names.
type preparedDB struct {
	*sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// maxPrepared bounds the statements kept; queries past it run unprepared,
// and so do those with more than maxPlaceholders placeholders: lists built
// to their length (IN (?, ?, ...)) would each take a slot for one use.
const (
	maxPrepared     = 256
	maxPlaceholders = 16
)

// stmt returns the kept statement for query, preparing it first (outside
// the lock: preparing may wait for a connection). nil means: run it
// unprepared.
func (p *preparedDB) stmt(ctx context.Context, query string) *sql.Stmt {
	p.mu.Lock()
	s, ok := p.stmts[query]
	full := len(p.stmts) >= maxPrepared
	p.mu.Unlock()
	if ok {
		return s
	}
	if full || strings.Count(query, "?") > maxPlaceholders {
		return nil
	}
	s, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared query reports the error
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.stmts[query]; ok { // prepared meanwhile by another reader
		s.Close()
		return prev
	}
	if p.stmts == nil {
		p.stmts = make(map[string]*sql.Stmt)
	}
	p.stmts[query] = s
	return s
}

// lookup runs a query that reads one row by key, for the lookups a put or
// a restore makes per file or per chunk. It is short, so once ctx has been
// checked it runs under a context that cannot be cancelled: the driver
// then spends no goroutine on watching it.
func (p *preparedDB) lookup(ctx context.Context, query string, args ...any) *sql.Row {
	if s := p.stmt(ctx, query); s != nil && ctx.Err() == nil {
		return s.QueryRowContext(context.WithoutCancel(ctx), args...)
	}
	return p.DB.QueryRowContext(ctx, query, args...) // reports ctx's error, or runs unprepared
}

func (p *preparedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, query, args...)
}

func (p *preparedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, query, args...)
}

func (p *preparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return p.DB.ExecContext(ctx, query, args...)
}

// querier is satisfied by *sql.DB and *sql.Tx, so the same query functions
// serve reads outside and inside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func dsn(path string, busy time.Duration, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if write {
		q.Set("_txlock", "immediate")
		// 512 KiB, not the default 2 MiB: a put's peak RSS fell by ~7 MB
		// (this and small.db's writer) and its time did not move; the OS
		// caches the file.
		q.Add("_pragma", "cache_size(-512)")
	} else {
		q.Add("_pragma", "query_only(1)")
		// Up to eight readers: each keeps a small page cache (the
		// default is 2 MiB a connection), and the OS caches the file.
		q.Add("_pragma", "cache_size(-256)")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Create makes a new catalog at path with the given settings in its meta
// table. The catalog is built under a temporary name and linked into place
// complete, so a crash or a concurrent Create never leaves a catalog file
// without its schema; when path exists, Create fails with fs.ErrExist.
func Create(ctx context.Context, path string, meta map[string]string, opts Options) (*Catalog, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("create catalog %s: %w", path, fs.ErrExist)
	}
	all := map[string]string{"format": fmt.Sprint(Format)}
	for k, v := range meta {
		if k != "format" {
			all[k] = v
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := fmt.Sprintf("%s.init-%x", path, rnd)
	defer removeDB(tmp)
	c, err := open(ctx, tmp, opts, all)
	if err != nil {
		return nil, fmt.Errorf("create catalog: %w", err)
	}
	// Fold the WAL into the file, so that the file alone is the catalog.
	_, err = c.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path) // fails if another Create got there first
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return nil, fmt.Errorf("create catalog %s: %w", path, err)
	}
	return Open(ctx, path, opts)
}

// removeDB removes a SQLite database file and its companions.
func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Open opens an existing catalog, applying pending migrations. A file
// without a loft schema (empty, or some other database) is refused as
// corrupt and left untouched.
func Open(ctx context.Context, path string, opts Options) (*Catalog, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoCatalog)
	}
	if err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrCorrupt, path)
	}
	c, err := open(ctx, path, opts, nil)
	if err != nil {
		return nil, err
	}
	format, err := c.Meta(ctx, "format")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	switch f, perr := strconv.Atoi(format); {
	case perr != nil || f < 1:
		err = fmt.Errorf("%w: repository format %q is not a number", ErrCorrupt, format)
	case f > Format:
		err = fmt.Errorf("%w: repository format %d, this loft reads format %d", ErrNewerFormat, f, Format)
	case f < Format:
		err = fmt.Errorf("%w: repository format %d is older than any this loft reads", ErrCorrupt, f)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// open opens the catalog file. With createMeta it creates the schema and
// writes createMeta into the meta table, in one transaction.
func open(ctx context.Context, path string, opts Options, createMeta map[string]string) (*Catalog, error) {
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w, err := sql.Open("sqlite", dsn(path, opts.BusyTimeout, true))
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	rdb, err := sql.Open("sqlite", dsn(path, opts.BusyTimeout, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	r := &preparedDB{DB: rdb}
	r.SetMaxOpenConns(readers)
	// Readers stay open: a reopened connection touches the WAL's metadata
	// (SQLite sets its owner when running as root), a write an idle node
	// must not make (see also OpenReaders).
	r.SetMaxIdleConns(readers)
	c := &Catalog{path: path, w: w, r: r, origin: opts.Origin, now: opts.Now}
	if err := c.migrate(ctx, createMeta); err != nil {
		c.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, classify(err))
	}
	return c, nil
}

// Close closes the catalog.
func (c *Catalog) Close() error { return errors.Join(c.r.Close(), c.w.Close()) }

// Path returns the catalog file's name.
func (c *Catalog) Path() string { return c.path }

// Origin returns the node ID recorded with this catalog's changes.
func (c *Catalog) Origin() string { return c.origin }

// readers is the number of reading connections.
const readers = 8

// OpenReaders opens every reading connection now, each with the WAL open.
// A long-running process calls it as it starts: the pool otherwise grows
// when reads first overlap, and a connection that opens the WAL changes
// the file's metadata (SQLite gives it the database's owner when running
// as root), at any time, however idle the process.
func (c *Catalog) OpenReaders(ctx context.Context) error {
	conns := make([]*sql.Conn, 0, readers)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for range readers {
		cn, err := c.r.Conn(ctx)
		if err != nil {
			return classify(err)
		}
		conns = append(conns, cn)
		var n int64
		if err := cn.QueryRowContext(ctx, `SELECT count(*) FROM meta`).Scan(&n); err != nil {
			return classify(err)
		}
	}
	return nil
}

// Meta returns a value from the meta table, or "" when the key is absent.
func (c *Catalog) Meta(ctx context.Context, key string) (string, error) {
	return meta(ctx, c.r, key)
}

func meta(ctx context.Context, q querier, key string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", classify(err)
	}
	return v, nil
}

// Tx runs fn in a write transaction (BEGIN IMMEDIATE). fn's error, or a
// failed commit, rolls back everything fn did.
//
// The transaction is SQLite's own, on the one writer connection, not
// database/sql's: a database/sql transaction watches its context, and then
// every query in it spends a goroutine on watching it too, which was a
// tenth of a tree put's commit. ctx bounds the wait for the connection and
// for the write lock; after that, see ExecContext.
func (c *Catalog) Tx(ctx context.Context, fn func(*Tx) error) error {
	conn, err := c.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin catalog transaction: %w", classify(err))
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		discard(conn) // the transaction's state is not known
		return fmt.Errorf("begin catalog transaction: %w", classify(err))
	}
	tx := &Tx{conn: conn, c: c, now: c.now()}
	defer func() {
		// A panic in fn must not keep the one writer connection in a
		// transaction: every later one would wait for it forever.
		if p := recover(); p != nil {
			tx.end(`ROLLBACK`)
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		tx.end(`ROLLBACK`)
		return classify(err)
	}
	if err := tx.end(`COMMIT`); err != nil {
		return fmt.Errorf("commit catalog transaction: %w", classify(err))
	}
	return nil
}

// end closes the transaction's statements, runs op (COMMIT or ROLLBACK)
// and gives the connection back. When op fails the connection is closed
// instead, which rolls back whatever is still open.
func (tx *Tx) end(op string) error {
	for _, s := range tx.stmts {
		s.Close()
	}
	tx.stmts = nil
	if _, err := tx.conn.ExecContext(context.Background(), op); err != nil {
		discard(tx.conn)
		return err
	}
	return tx.conn.Close()
}

// discard closes conn for good rather than returning it to the pool.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// Tx is a write transaction. Its methods must not be called after the
// function given to Catalog.Tx returns.
type Tx struct {
	conn      *sql.Conn // in a transaction until end
	c         *Catalog
	now       time.Time
	seq       int64 // sequence of the last change this transaction logged
	originSeq int64 // its origin_seq: the identity of a version it adds
	// ownNext is the origin_seq of this node's next change once this
	// transaction has logged one (0: not known, computed from the log).
	// Only this transaction writes the log while it runs; anything else
	// in it that writes the log or the floor resets it.
	ownNext int64
	// replicas says whether the replicas table has rows, once asked.
	replicas replicaRows
	// absent holds names Prefetch found without an object; an insert of
	// the object removes its name.
	absent map[string]struct{}
	// heads holds objects Prefetch read, each until objectHead uses it.
	heads map[string]objectRow

	stmts map[string]*sql.Stmt // prepared once per transaction; closed by end
	keep  int                  // keep-versions, read once per transaction
}

type replicaRows int8

const (
	replicasUnknown replicaRows = iota
	replicasNone
	replicasSome
)

// prep returns the transaction's prepared statement for query. Preparing
// dominates the cost of the small statements a commit runs per file.
func (tx *Tx) prep(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := tx.stmts[query]; ok {
		return s, nil
	}
	s, err := tx.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if tx.stmts == nil {
		tx.stmts = make(map[string]*sql.Stmt)
	}
	tx.stmts[query] = s
	return s, nil
}

// ExecContext, QueryContext and QueryRowContext run prepared statements, so
// a *Tx is a querier.
//
// A statement of a write transaction is not interrupted once started: ctx
// is checked before it runs, and the statement itself gets a context that
// cannot be cancelled. The statements of a transaction are short, and the
// driver spends a goroutine per statement on watching a cancellable
// context. A statement that finds ctx cancelled fails, and so the
// transaction rolls back.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := tx.prep(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(context.WithoutCancel(ctx), args...)
}

func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := tx.prep(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(context.WithoutCancel(ctx), args...)
}

func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := tx.prep(ctx, query)
	if err != nil || ctx.Err() != nil {
		// A *sql.Row cannot carry an error of ours; the unprepared query
		// reports the same failure (or the cancellation) through Scan.
		return tx.conn.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(context.WithoutCancel(ctx), args...)
}

// SetMeta sets a value in the meta table.
func (tx *Tx) SetMeta(ctx context.Context, key, value string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// Meta reads a value from the meta table inside the transaction.
func (tx *Tx) Meta(ctx context.Context, key string) (string, error) { return meta(ctx, tx, key) }

// classify maps SQLite's result codes to the package's errors, keeping the
// original in the chain.
func classify(err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	if se.Code() == sqlite3.SQLITE_IOERR_SHMSIZE {
		// Growing the shared-memory file (readers need it too) failed: the
		// disk is full.
		return fmt.Errorf("%w: %w", syscall.ENOSPC, err)
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w (another loft process is writing): %w", ErrBusy, err)
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", syscall.ENOSPC, err)
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
		return fmt.Errorf("%w: %w", fs.ErrPermission, err)
	}
	return err
}

// AboutNode reports whether err, met applying a peer's change, is about
// this node rather than the change: a busy, full or failing disk, a damaged
// catalog, a stop. Such a change is tried again later; only one the
// error is about is refused (quarantined).
func AboutNode(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_PERM, sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
			sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_INTERRUPT:
			return true
		}
	}
	switch fault.Of(err) {
	case fault.Busy, fault.NoSpace, fault.Interrupted, fault.Repository:
		return true
	}
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, context.DeadlineExceeded)
}

// nanos and fromNanos convert times to the catalog's Unix nanoseconds.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// prefixEnd returns the smallest string greater than every string with
// prefix p, or "" when there is none, so that a prefix is matched by a range
// (name >= p AND name < prefixEnd(p)) that uses the index.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "" // no upper bound
}
