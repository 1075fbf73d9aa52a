package node

import (
	"io/fs"
	"syscall"

	"github.com/loftstore/loft/catalog"
)

// statOf is what the files cache compares of a file: size, mtime, ctime
// (which every write and every chmod move, and which no one can set back),
// inode and device.
func statOf(fi fs.FileInfo) (catalog.FileStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return catalog.FileStat{}, false
	}
	return catalog.FileStat{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), CTime: st.Ctim.Nano(),
		Ino: st.Ino, Dev: st.Dev}, true
}
