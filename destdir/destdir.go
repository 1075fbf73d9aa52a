// Package destdir is the one place loft writes files under a directory the
// user chose: restores (get), and, to come, sync's applier and the entries
// of a zip. A path inside is an object name (names.Name), relative to the
// directory; every operation goes through os.Root, which refuses any path
// that would leave the directory, symbolic links planted inside it
// included. Names are checked when they enter loft; this is the second,
// independent guard, at the file system.
//
// A file is written to a temporary name in its final directory and renamed
// into place only when Commit says it is complete, so a failed write never
// leaves a partial file under the final name.
package destdir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
)

// ErrInTheWay means something at the destination is not what a write may
// replace: a directory, a link, a device or a pipe where a file goes, or a
// file where a directory goes. Its kind is fault.Invalid.
var ErrInTheWay = fault.New(fault.Invalid, "destination is in the way")

// Dir is an open destination directory. It is safe for concurrent use.
type Dir struct {
	root *os.Root
	path string

	mu      sync.Mutex
	renamed map[string]bool // directories a durable Commit renamed into, until Sync
	subs    map[string]*sub // open directories below, by path
	clock   uint64
}

// sub is a directory below d, opened through d's root (so inside it),
// kept open while files are written in it: an operation on one name in
// it then costs one system call, where a path below the root costs one
// open per directory on the way.
type sub struct {
	root *os.Root
	refs int
	used uint64
}

// maxSubs bounds the directories kept open. A tree restore writes in name
// order, so the directories in use are few at any time.
const maxSubs = 64

// in returns the open directory dir (a path relative to d; "" is d
// itself), making it and those above it first when create is set, and the
// function that lets go of it. Without create, a missing directory is an
// error satisfying fs.ErrNotExist.
func (d *Dir) in(dir string, create bool) (*os.Root, func(), error) {
	if dir == "" || dir == "." {
		return d.root, func() {}, nil
	}
	d.mu.Lock()
	if s, ok := d.subs[dir]; ok {
		s.refs++
		d.clock++
		s.used = d.clock
		d.mu.Unlock()
		return s.root, d.release(s), nil
	}
	d.mu.Unlock()
	r, err := d.root.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err = d.root.MkdirAll(dir, 0o755); err == nil {
			r, err = d.root.OpenRoot(dir)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.subs[dir]; ok { // opened meanwhile by another writer
		r.Close()
		s.refs++
		return s.root, d.release(s), nil
	}
	if d.subs == nil {
		d.subs = make(map[string]*sub)
	}
	for len(d.subs) >= maxSubs && d.evict() {
	}
	d.clock++
	s := &sub{root: r, refs: 1, used: d.clock}
	d.subs[dir] = s
	return r, d.release(s), nil
}

func (d *Dir) release(s *sub) func() {
	return func() {
		d.mu.Lock()
		s.refs--
		d.mu.Unlock()
	}
}

// evict closes the least recently used directory no one holds; d.mu is
// held. It reports whether it closed one.
func (d *Dir) evict() bool {
	var oldest string
	var found *sub
	for k, s := range d.subs {
		if s.refs == 0 && (found == nil || s.used < found.used) {
			oldest, found = k, s
		}
	}
	if found == nil {
		return false
	}
	found.root.Close()
	delete(d.subs, oldest)
	return true
}

// Open opens the existing directory path as a destination.
func Open(path string) (*Dir, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open destination: %w", err)
	}
	return &Dir{root: r, path: path}, nil
}

// Close releases the directory.
func (d *Dir) Close() error {
	d.mu.Lock()
	for _, s := range d.subs {
		s.root.Close()
	}
	d.subs = nil
	d.mu.Unlock()
	return d.root.Close()
}

// Path returns the directory's path as given to Open.
func (d *Dir) Path() string { return d.path }

// Display returns how rel is named in messages: below the directory.
func (d *Dir) Display(rel names.Name) string { return path.Join(d.path, rel.String()) }

// MkdirAll makes the directory rel and those above it, inside d.
func (d *Dir) MkdirAll(rel names.Name) error {
	if err := d.root.MkdirAll(rel.String(), 0o755); err != nil {
		return d.inTheWay(rel, err)
	}
	return nil
}

// Check reports whether a file may be written at rel: nothing is there, or
// a regular file that the write will replace.
func (d *Dir) Check(rel names.Name) error {
	r, done, err := d.in(rel.Dir().String(), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nor is the file
	}
	if err != nil {
		return d.inTheWay(rel, err)
	}
	defer done()
	return d.check(r, rel)
}

// check is Check with rel's directory open as r.
func (d *Dir) check(r *os.Root, rel names.Name) error {
	fi, err := r.Lstat(rel.Base())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return d.inTheWay(rel, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: %w: a %s, not a regular file", d.Display(rel), ErrInTheWay, KindOf(fi.Mode()))
	}
	return nil
}

// File is a file being written under a temporary name.
type File struct {
	*os.File
	d        *Dir
	rel      names.Name
	in       *os.Root // rel's directory
	done     func()   // lets go of in
	tmp      string   // in in
	finished bool
}

// Create starts the file rel: its directory is made as needed, and the
// data goes to a new temporary file beside it until Commit.
func (d *Dir) Create(rel names.Name) (*File, error) {
	r, done, err := d.in(rel.Dir().String(), true)
	if err != nil {
		return nil, d.inTheWay(rel, err)
	}
	if err := d.check(r, rel); err != nil {
		done()
		return nil, err
	}
	tmp := tempName(rel.Base())
	f, err := r.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		done()
		return nil, d.inTheWay(rel, err)
	}
	return &File{File: f, d: d, rel: rel, in: r, done: done, tmp: tmp}, nil
}

// tempName is a new temporary name beside the file base.
func tempName(base string) string {
	var rnd [6]byte
	rand.Read(rnd[:])
	return "." + truncate(base, 200) + ".loft-" + hex.EncodeToString(rnd[:])
}

// Commit gives the file its mode and modification time (none when mtime is
// zero), flushes it when sync is set, and renames it into place. A regular
// file there is replaced; anything else makes Commit fail and the file is
// removed. With sync, the rename is durable after the next Sync.
func (f *File) Commit(mode fs.FileMode, mtime time.Time, sync bool) (err error) {
	defer func() {
		if err != nil {
			f.Abort()
		}
	}()
	if err := f.File.Chmod(modeBits(mode)); err != nil {
		return err
	}
	if sync {
		if err := f.File.Sync(); err != nil {
			return err
		}
	}
	if err := f.File.Close(); err != nil {
		return err
	}
	if !mtime.IsZero() {
		if err := f.in.Chtimes(f.tmp, mtime, mtime); err != nil {
			return err
		}
	}
	if err := f.d.check(f.in, f.rel); err != nil { // again: it may have changed meanwhile
		return err
	}
	if err := f.in.Rename(f.tmp, f.rel.Base()); err != nil {
		return f.d.inTheWay(f.rel, err)
	}
	f.finished = true
	f.done()
	if sync {
		f.d.mu.Lock()
		if f.d.renamed == nil {
			f.d.renamed = map[string]bool{}
		}
		f.d.renamed[path.Dir(f.rel.String())] = true
		f.d.mu.Unlock()
	}
	return nil
}

// Sync makes durable the renames of the files committed with sync since
// the last Sync: it syncs each directory they were renamed into, once.
func (d *Dir) Sync() error {
	d.mu.Lock()
	dirs := d.renamed
	d.renamed = nil
	d.mu.Unlock()
	for rel := range dirs {
		f, err := d.root.Open(rel)
		if err == nil {
			err = f.Sync()
			f.Close()
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", path.Join(d.path, rel), err)
		}
	}
	return nil
}

// SyncAll makes everything written under the directory durable at once:
// one syncfs(2) of its file system, where a tree restore would otherwise
// flush each file and directory on its own.
func (d *Dir) SyncAll() error {
	f, err := d.root.Open(".")
	if err != nil {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	defer f.Close()
	if err := syncFS(f); err != nil {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	d.mu.Lock()
	d.renamed = nil
	d.mu.Unlock()
	return nil
}

// Symlink makes rel a symbolic link to target with modification time
// mtime (none when zero). The target is stored as given and never
// followed here: it may point anywhere, and every later write through d
// still stays inside. A link or regular file at rel is replaced (through a
// temporary name, so rel is never missing); anything else is in the way.
func (d *Dir) Symlink(rel names.Name, target string, mtime time.Time) error {
	r, done, err := d.in(rel.Dir().String(), true)
	if err != nil {
		return d.inTheWay(rel, err)
	}
	defer done()
	fi, err := r.Lstat(rel.Base())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return d.inTheWay(rel, err)
	case !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Errorf("%s: %w: a %s, not a link or a file", d.Display(rel), ErrInTheWay, KindOf(fi.Mode()))
	}
	tmp := tempName(rel.Base())
	if err := r.Symlink(target, tmp); err != nil {
		return d.inTheWay(rel, err)
	}
	if !mtime.IsZero() {
		if err := lchtimes(r, path.Join(d.path, rel.Dir().String()), tmp, mtime); err != nil {
			r.Remove(tmp)
			return err
		}
	}
	if err := r.Rename(tmp, rel.Base()); err != nil {
		r.Remove(tmp)
		return d.inTheWay(rel, err)
	}
	return nil
}

// SetDir gives the directory rel ("" for d itself) its mode and
// modification time. A restore calls it after writing what the directory
// holds, deepest first: writing into it moves its mtime, and a mode
// without write permission would stop those writes.
func (d *Dir) SetDir(rel string, mode fs.FileMode, mtime time.Time) error {
	if rel == "" {
		rel = "."
	}
	fi, err := d.root.Lstat(rel)
	if err != nil {
		return fmt.Errorf("%s: %w", path.Join(d.path, rel), err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %w: a %s, not a directory", path.Join(d.path, rel), ErrInTheWay, KindOf(fi.Mode()))
	}
	if err := d.root.Chmod(rel, modeBits(mode)); err != nil {
		return err
	}
	if !mtime.IsZero() {
		return d.root.Chtimes(rel, mtime, mtime)
	}
	return nil
}

// modeBits keeps of a mode what a restore sets: permissions, setuid,
// setgid and sticky.
func modeBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// Abort closes and removes the temporary file, unless Commit succeeded. It
// is safe to call more than once.
func (f *File) Abort() {
	if f.finished {
		return
	}
	f.finished = true
	f.File.Close()
	f.in.Remove(f.tmp)
	f.done()
}

// inTheWay explains an error of the root: a path that leaves it (through a
// link planted in the destination) is reported as such.
func (d *Dir) inTheWay(rel names.Name, err error) error {
	if strings.Contains(err.Error(), "escapes from parent") || errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("%s: %w: a symbolic link inside leads out of %s", d.Display(rel), ErrInTheWay, d.path)
	}
	// os.Root says "not a directory" without ENOTDIR when a path it opens
	// as a directory is something else.
	if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) || strings.HasSuffix(err.Error(), "not a directory") {
		return fmt.Errorf("%s: %w: %v", d.Display(rel), ErrInTheWay, err)
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// KindOf names the kind of file a mode says, for messages.
func KindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	case m.IsRegular():
		return "regular file"
	}
	return strings.TrimSpace(m.Type().String())
}
