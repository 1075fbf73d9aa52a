package catalog

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loftstore/loft/names"
)

func TestCreateThenOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Create(ctx, path, map[string]string{"node_id": "n1", "chunking": `{"avg":1}`}, Options{Origin: "n1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if c.Path() != path || c.Origin() != "n1" {
		t.Fatalf("Path, Origin = %q, %q", c.Path(), c.Origin())
	}
	add(t, c, nv("a/b", "one", 1, 2))
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	c, err = Open(ctx, path, Options{Origin: "n1"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	for k, want := range map[string]string{"format": "1", "node_id": "n1", "chunking": `{"avg":1}`, "absent": ""} {
		got, err := c.Meta(ctx, k)
		if err != nil || got != want {
			t.Fatalf("Meta(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	h, err := c.Head(ctx, names.Must("a/b"))
	if err != nil || h.Num != 1 || h.Chunks != 2 {
		t.Fatalf("Head after reopen = %+v, %v", h, err)
	}
	// Reopening applies no migration again and keeps the schema version.
	db := rawDB(t, path)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if v := rawCount(t, db, `PRAGMA user_version`); v != int64(len(ms)) {
		t.Fatalf("user_version = %d, want %d", v, len(ms))
	}
}

func TestCreateOverExistingFails(t *testing.T) {
	ctx := context.Background()
	_, path := newCatalog(t, Options{})
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Create(ctx, path, map[string]string{}, Options{})
	if err == nil {
		c.Close()
		t.Fatal("Create over an existing catalog succeeded")
	}
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing catalog: %v, want fs.ErrExist", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("existing catalog gone after failed Create: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("failed Create changed the existing catalog file")
	}

	// Any existing file counts, not only catalogs.
	other := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(other, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Create(ctx, other, map[string]string{}, Options{}); err == nil {
		c.Close()
		t.Fatal("Create over an existing file succeeded")
	}
	if b, _ := os.ReadFile(other); string(b) != "keep me" {
		t.Fatalf("file changed to %q", b)
	}
}

// TestCreateOddPath checks that the path reaches SQLite unmangled: the DSN
// is a URI, so characters special in URIs must be escaped.
func TestCreateOddPath(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"sp ace", "q?x=1", "h#sh", "pct%41", "amp&_pragma=x", "semi;colon", "ünï"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".db")
		c, err := Create(ctx, path, map[string]string{}, Options{})
		if err != nil {
			t.Fatalf("Create(%q): %v", path, err)
		}
		add(t, c, nv("x", "x", 1))
		c.Close()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), name+".db") {
				t.Fatalf("Create(%q) made a stray file %q", path, e.Name())
			}
		}
		c, err = Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", path, err)
		}
		if _, err := c.Head(ctx, names.Must("x")); err != nil {
			t.Fatalf("Head after reopen of %q: %v", path, err)
		}
		c.Close()
	}
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.db")
	c, err := Open(context.Background(), path, Options{})
	if err == nil {
		c.Close()
		t.Fatal("Open of a missing file succeeded")
	}
	mustErrIs(t, "Open missing", err, ErrNoCatalog)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing catalog created a file: %v", err)
	}
}

// closedCatalog makes a catalog with some content and closes it, which
// checkpoints the WAL into the main file.
func closedCatalog(t *testing.T, objects int) string {
	t.Helper()
	c, path := newCatalog(t, Options{})
	err := c.Tx(context.Background(), func(tx *Tx) error {
		for i := range objects {
			v := nv(fmt.Sprintf("d%d/obj%d", i%7, i), "c", i, i+1, i+2)
			if _, err := tx.AddVersion(context.Background(), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WAL left after Close: %v", err)
	}
	return path
}

func TestOpenNewerFormat(t *testing.T) {
	ctx := context.Background()
	path := closedCatalog(t, 3)
	db := rawDB(t, path)
	if _, err := db.Exec(`UPDATE meta SET value = '2' WHERE key = 'format'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c, err := Open(ctx, path, Options{})
	if err == nil {
		c.Close()
		t.Fatal("Open of a format 2 catalog succeeded")
	}
	mustErrIs(t, "Open format 2", err, ErrNewerFormat)
}

func TestOpenNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := closedCatalog(t, 3)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, len(ms)+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c, err := Open(ctx, path, Options{})
	if err == nil {
		c.Close()
		t.Fatal("Open of a catalog with a newer schema succeeded")
	}
	mustErrIs(t, "Open newer schema", err, ErrNewerFormat)
	// Refusing must not have touched the schema version.
	db = rawDB(t, path)
	if v := rawCount(t, db, `PRAGMA user_version`); v != int64(len(ms)+1) {
		t.Fatalf("user_version = %d after refused Open", v)
	}
}

// TestOpenCorrupt: SQLite notices both a non-database (bad header: NOTADB)
// and a truncated catalog (the header's page count exceeds the file:
// CORRUPT) on the first statement Open runs, so Open itself fails, with
// ErrCorrupt; it never returns a catalog whose later queries fail.
func TestOpenCorrupt(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))

	check := func(t *testing.T, path string) {
		t.Helper()
		c, err := Open(ctx, path, Options{})
		if err == nil {
			c.Close()
			t.Fatal("Open of a damaged catalog succeeded")
		}
		mustErrIs(t, "Open damaged", err, ErrCorrupt)
		if errors.Is(err, ErrNewerFormat) || errors.Is(err, ErrNoCatalog) {
			t.Fatalf("damaged catalog misreported: %v", err)
		}
	}

	for _, size := range []int{100, 4096, 65536} {
		t.Run("random", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "random.db")
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			check(t, path)
		})
	}

	for _, objects := range []int{3, 300} {
		t.Run("truncated", func(t *testing.T) {
			src := closedCatalog(t, objects)
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 8192 {
				t.Fatalf("catalog file is only %d bytes", len(b))
			}
			path := filepath.Join(t.TempDir(), "copy.db")
			if err := os.WriteFile(path, b[:len(b)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			check(t, path)
		})
	}
}

// TestOpenNotACatalog: a zero-length file (what a Create that crashed
// before its first commit leaves behind) or some other program's SQLite
// database is not a catalog: Open refuses it as corrupt, not as a newer
// format, and does not write loft's schema into it.
func TestOpenNotACatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes(x TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, path := range []string{empty, foreign} {
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(ctx, path, Options{})
		if err == nil {
			c.Close()
			t.Fatalf("Open(%s) succeeded", filepath.Base(path))
		}
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNewerFormat) {
			t.Errorf("Open(%s) = %v, want ErrCorrupt (and not ErrNewerFormat)", filepath.Base(path), err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Errorf("Open(%s) modified the file (%d -> %d bytes)", filepath.Base(path), len(before), len(after))
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != "empty.db" && e.Name() != "foreign.db" {
				t.Errorf("Open(%s) left %s", filepath.Base(path), e.Name())
			}
		}
	}
}

// TestCreateNilMeta: Create documents meta as settings to store; a nil map
// (no extra settings) must work, and the caller's map must not be changed.
func TestCreateNilMeta(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Create with nil meta panicked: %v", r)
			}
		}()
		c, err := Create(ctx, path, nil, Options{})
		if err != nil {
			t.Fatalf("Create with nil meta: %v", err)
		}
		c.Close()
	}()
	meta := map[string]string{"k": "v"}
	c, err := Create(ctx, filepath.Join(t.TempDir(), "catalog.db"), meta, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if len(meta) != 1 {
		t.Fatalf("Create changed the caller's meta map: %v", meta)
	}
}

// TestOpenMissingFormat: Create commits the schema and the meta rows in two
// transactions, so a crash between them leaves a catalog with no 'format';
// that, like a format that is not a number above Format, is not "a newer
// loft's repository".
func TestOpenMissingFormat(t *testing.T) {
	ctx := context.Background()
	for _, q := range []string{`DELETE FROM meta WHERE key = 'format'`, `UPDATE meta SET value = '0' WHERE key = 'format'`,
		`UPDATE meta SET value = 'x' WHERE key = 'format'`} {
		path := closedCatalog(t, 1)
		db := rawDB(t, path)
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
		db.Close()
		c, err := Open(ctx, path, Options{})
		if err == nil {
			c.Close()
			t.Fatalf("after %s: Open succeeded", q)
		}
		if errors.Is(err, ErrNewerFormat) {
			t.Errorf("after %s: Open = %v, want an error that is not ErrNewerFormat", q, err)
		}
	}
}
