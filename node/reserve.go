package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/loftstore/loft/fault"
)

// The reserve is a file of zeros that a repository keeps on its file
// system, as databases keep a ballast file: when the disk is completely
// full, loft deletes it to find the room that reading the catalog (SQLite's
// shared-memory file), deleting objects and collecting garbage need, so the
// space that fills a disk can always be given back. Commands that would
// only fill the disk further never touch it. It is made again, when there
// is room, by the next write that finds it missing.
const reserveFile = "reserve"

// reserveSize is the reserve for a file system of total bytes: 1/64 of it,
// at least 256 KiB, at most 16 MiB.
func reserveSize(total int64) int64 { return min(max(total/64, 256<<10), 16<<20) }

// space returns the free bytes (for an unprivileged user) and the size of
// the file system holding dir.
func space(dir string) (free, total int64, err error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, 0, err
	}
	return int64(fs.Bavail) * int64(fs.Bsize), int64(fs.Blocks) * int64(fs.Bsize), nil
}

// ensureReserve makes the reserve file when it is missing and the file
// system has room for it twice over, and reports whether the repository
// has one. A write that would fill the disk further checks it first, so
// that what releasing the reserve gave back stays for rm and gc.
func (n *Node) ensureReserve() bool {
	path := filepath.Join(n.dir, reserveFile)
	if _, err := os.Stat(path); err == nil {
		return true
	}
	free, total, err := space(n.dir)
	size := reserveSize(total)
	if err != nil {
		return true // not known: do not stand in the way
	}
	if free < 2*size {
		return false
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return true
	}
	// Allocated blocks, not a sparse file: only real blocks free space when
	// the reserve goes.
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		_, err = f.Write(make([]byte, size))
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		n.log.Debug("no reserve made", "err", err)
	}
	return true
}

// releaseReserve deletes the reserve and reports whether there was one.
func (n *Node) releaseReserve() bool {
	path := filepath.Join(n.dir, reserveFile)
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	if err := os.Remove(path); err != nil {
		return false
	}
	n.log.Warn("the disk is full: released the repository's reserve to work", "bytes", fi.Size())
	return true
}

// releaseReserveAt deletes the reserve of the repository in dir, before it
// is open.
func releaseReserveAt(dir string) bool {
	return os.Remove(filepath.Join(dir, reserveFile)) == nil
}

// freeing runs fn, an operation that frees space or needs little; if the
// disk is full, it releases the reserve and runs fn once more.
func (n *Node) freeing(fn func() error) error {
	err := fn()
	if errors.Is(err, syscall.ENOSPC) && n.releaseReserve() {
		err = fn()
	}
	return err
}

// diskFull explains a full disk met by a write: how much there is, and how
// much input the operation had left to store (need; 0 when unknown).
func (n *Node) diskFull(op string, need int64, err error) error {
	free, _, serr := space(n.dir)
	have := "?"
	if serr == nil {
		have = humanize.IBytes(uint64(free))
	}
	msg := fmt.Sprintf("%s: the disk holding %s is full (%s free", op, n.dir, have)
	if need > 0 {
		msg += fmt.Sprintf("; %s of input left to store", humanize.IBytes(uint64(need)))
	}
	msg += "); nothing half-written was kept. Free space, or loft rm and loft gc (loft keeps room for them)"
	return fault.E(fault.NoSpace, "%s: %w", msg, err)
}
