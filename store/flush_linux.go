package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// flusher makes written files and directory changes durable. On Linux one
// syncfs(2) covers every file and directory of the file system, which costs
// far less than an fsync per chunk. It reports writeback errors since Linux 5.8.
type flusher struct{ root *os.File }

func newFlusher(root string) (flusher, error) {
	f, err := os.Open(root)
	return flusher{root: f}, err
}

func (f flusher) Files([]string) error           { return unix.Syncfs(int(f.root.Fd())) }
func (f flusher) Dirs(map[string]struct{}) error { return unix.Syncfs(int(f.root.Fd())) }
func (f flusher) Close() error                   { return f.root.Close() }

// startWriteback asks the kernel to begin writing a staged file now, without
// waiting, so that the flush at commit finds little left to do.
func startWriteback(f TempFile) {
	if osf, ok := f.(*os.File); ok {
		unix.SyncFileRange(int(osf.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
}
