package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// TestMain doubles as the entry point of helper processes: the test binary
// re-executes itself with helperEnv set to run a helper (runHelper) instead of
// the tests (see sessions_test.go and tx_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

const (
	helperEnv     = "LOFT_CATALOG_TEST_HELPER"
	helperPathEnv = "LOFT_CATALOG_TEST_PATH"
)

// runHelper runs a helper-process mode and returns its exit code.
func runHelper(mode string) int {
	path := os.Getenv(helperPathEnv)
	switch mode {
	case "session":
		return helperSession(path)
	case "canceledQuery":
		return helperCanceledQuery(path)
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock for Options.Now, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// testOrigin is the Origin of catalogs made by newCatalog.
const testOrigin = "node-test"

// newCatalog creates a catalog in a fresh temporary directory, with a fake
// clock unless opts.Now is set, and closes it when the test ends.
func newCatalog(t testing.TB, opts Options) (*Catalog, string) {
	t.Helper()
	if opts.Origin == "" {
		opts.Origin = testOrigin
	}
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Create(context.Background(), path, map[string]string{"node_id": opts.Origin}, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// rawDB opens a plain database/sql connection to the catalog file, beside
// the catalog, with foreign keys enforced as the catalog's own connections do.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		t.Fatalf("open raw connection: %v", err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// cid returns the i'th test chunk ID.
func cid(i int) store.ID { return store.Sum(fmt.Appendf(nil, "chunk-%d", i)) }

// ref returns a chunk reference to cid(i) with sizes derived from i, so the
// same chunk always has the same sizes.
func ref(i int) ChunkRef { return ChunkRef{ID: cid(i), Plain: int64(1000 + i), Stored: int64(500 + i)} }

func refs(is ...int) []ChunkRef {
	out := make([]ChunkRef, len(is))
	for i, n := range is {
		out[i] = ref(n)
	}
	return out
}

// digest returns a whole-object digest for a content label.
func digest(s string) Digest { return Digest(sha256.Sum256([]byte(s))) }

// nv builds a NewVersion whose digest is derived from label and whose size
// is the sum of its chunks' plain sizes.
func nv(name, label string, chunks ...int) NewVersion {
	v := NewVersion{Name: names.Must(name), SHA256: digest(label), Mode: 0o644, MTime: t0, Chunks: refs(chunks...)}
	for _, r := range v.Chunks {
		v.Size += r.Plain
	}
	return v
}

// add runs AddVersion in its own transaction.
func add(t testing.TB, c *Catalog, v NewVersion) Added {
	t.Helper()
	var a Added
	err := c.Tx(context.Background(), func(tx *Tx) error {
		var err error
		a, err = tx.AddVersion(context.Background(), v)
		return err
	})
	if err != nil {
		t.Fatalf("AddVersion(%s): %v", v.Name, err)
	}
	return a
}

func del(c *Catalog, name string) (Version, error) {
	var v Version
	err := c.Tx(context.Background(), func(tx *Tx) error {
		var err error
		v, err = tx.Delete(context.Background(), names.Must(name))
		return err
	})
	return v, err
}

func restore(c *Catalog, name string, num int64) (Version, bool, error) {
	var v Version
	var added bool
	err := c.Tx(context.Background(), func(tx *Tx) error {
		var err error
		v, added, err = tx.Restore(context.Background(), names.Must(name), num)
		return err
	})
	return v, added, err
}

func setConfig(t testing.TB, c *Catalog, key, value string) {
	t.Helper()
	err := c.Tx(context.Background(), func(tx *Tx) error { return tx.SetConfig(context.Background(), key, value) })
	if err != nil {
		t.Fatalf("SetConfig(%s=%s): %v", key, value, err)
	}
}

// chunkIDs returns the chunk list of v, in order.
func chunkIDs(t testing.TB, c *Catalog, v Version) []store.ID {
	t.Helper()
	var out []store.ID
	next := int64(0)
	err := c.Chunks(context.Background(), v, 0, func(idx int64, r ChunkRef) error {
		if idx != next {
			return fmt.Errorf("Chunks gave index %d, want %d", idx, next)
		}
		next++
		out = append(out, r.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("Chunks(%s@%d): %v", v.Name, v.Num, err)
	}
	return out
}

// chunkRow is a chunk's row as read through a raw connection.
type chunkRow struct {
	refs           int64
	plain, stored  int64
	zeroAt, zeroSq sql.NullInt64
}

// rawChunks reads every chunk row.
func rawChunks(t testing.TB, db *sql.DB) map[store.ID]chunkRow {
	t.Helper()
	rows, err := db.Query(`SELECT hash, refs, plain_size, stored_size, zero_at, zero_seq FROM chunks`)
	if err != nil {
		t.Fatalf("read chunks: %v", err)
	}
	defer rows.Close()
	out := make(map[store.ID]chunkRow)
	for rows.Next() {
		var h []byte
		var r chunkRow
		if err := rows.Scan(&h, &r.refs, &r.plain, &r.stored, &r.zeroAt, &r.zeroSq); err != nil {
			t.Fatalf("scan chunk: %v", err)
		}
		out[store.ID(h)] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read chunks: %v", err)
	}
	return out
}

// rawCount returns the result of a count query.
func rawCount(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// lastChangeSeq returns the newest change's sequence.
func lastChangeSeq(t testing.TB, c *Catalog) int64 {
	t.Helper()
	chs, err := c.Changes(context.Background(), 0, 1<<30)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if len(chs) == 0 {
		return 0
	}
	return chs[len(chs)-1].Seq
}

func mustErrIs(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want errors.Is(err, %v)", what, err, target)
	}
}

// applyRV parses rv as the boundary would, then applies it.
func (tx *Tx) applyRV(ctx context.Context, rv RemoteVersion, chunks []ChunkRef) (Applied, error) {
	in, err := ParseRemote(rv)
	if err != nil {
		return Applied{}, err
	}
	return tx.ApplyRemote(ctx, in, chunks)
}

// conflictName is ConflictName on strings.
func conflictName(name, origin string) string {
	return ConflictName(names.Must(name), origin).String()
}

// root is the prefix of everything.
var root names.Prefix

// validName reports whether s is a valid object name.
func validName(s string) error {
	_, err := names.Parse(s)
	return err
}
