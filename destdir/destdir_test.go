package destdir

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loftstore/loft/names"
)

func write(t *testing.T, d *Dir, rel string, data string) error {
	t.Helper()
	f, err := d.Create(names.Must(rel))
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	return f.Commit(0o640, time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC), true)
}

// entries lists every path below dir (relative), dot files included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); err == nil && rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestCreateCommit(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := write(t, d, "a/b/c.txt", "hello"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a", "b", "c.txt")
	b, err := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if err != nil || string(b) != "hello" || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)) {
		t.Fatalf("written file: %q %v %v %v", b, err, fi.Mode(), fi.ModTime())
	}
	// A regular file there is replaced.
	if err := write(t, d, "a/b/c.txt", "again"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "again" {
		t.Fatalf("replaced file holds %q", b)
	}
	if got := entries(t, dir); strings.Join(got, ",") != "a,a/b,a/b/c.txt" {
		t.Fatalf("left behind: %v", got)
	}
}

// A file aborted, or failed, leaves nothing: no temporary, no final name.
func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	d, _ := Open(dir)
	defer d.Close()
	f, err := d.Create(names.Must("x"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	f.Abort()
	f.Abort()
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("left behind: %v", got)
	}
}

// Symbolic links planted in the destination cannot lead a write out of it;
// a link that stays inside is followed.
func TestSymlinksCannotEscape(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../", filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "real"), 0o755)
	if err := os.Symlink("real", filepath.Join(dir, "in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, "file-link")); err != nil {
		t.Fatal(err)
	}
	d, _ := Open(dir)
	defer d.Close()
	for _, rel := range []string{"out/x", "out/deep/x", "up/x", "file-link"} {
		err := write(t, d, rel, "escape")
		if !errors.Is(err, ErrInTheWay) {
			t.Errorf("write to %s: %v, want ErrInTheWay", rel, err)
		}
	}
	if got := entries(t, outside); len(got) != 0 {
		t.Fatalf("written outside the destination: %v", got)
	}
	if err := write(t, d, "in/x", "inside"); err != nil {
		t.Fatalf("a link inside the destination: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "real", "x")); string(b) != "inside" {
		t.Fatalf("through a link inside: %q", b)
	}
}

// Only a regular file is replaced: a directory, a pipe or a file where a
// directory goes is in the way.
func TestInTheWay(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	os.WriteFile(filepath.Join(dir, "afile"), []byte("f"), 0o644)
	if err := syscall.Mkfifo(filepath.Join(dir, "apipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := Open(dir)
	defer d.Close()
	for _, rel := range []string{"adir", "apipe", "afile/below"} {
		if err := write(t, d, rel, "x"); !errors.Is(err, ErrInTheWay) {
			t.Errorf("write to %s: %v, want ErrInTheWay", rel, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "afile")); string(b) != "f" {
		t.Fatalf("afile changed: %q", b)
	}
}

// Sync syncs the directories durable commits renamed into, and forgets
// them; a directory removed meanwhile is an error naming it.
func TestSyncDirectories(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"a/one", "a/two", "b/three"} {
		n := names.Must(name)
		if err := d.MkdirAll(names.Must(path.Dir(name))); err != nil {
			t.Fatal(err)
		}
		f, err := d.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(0o644, time.Time{}, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	f, err := d.Create(names.Must("b/four"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(0o644, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "b")) {
		t.Fatalf("Sync after b was removed = %v; want an error naming it", err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync with nothing renamed since = %v", err)
	}
}
