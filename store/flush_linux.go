package store

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncfsFlusher makes everything written to the file system durable with
// one syncfs(2), which costs far less than an fsync per chunk.
type syncfsFlusher struct{ root *os.File }

// newFlusher uses syncfs where it reports writeback errors (Linux 5.8 and
// later), and an fsync per file and directory on older kernels, where a
// failed write would go unnoticed.
func newFlusher(root string) (flusher, error) {
	if !syncfsReportsErrors() {
		return fsyncFlusher{}, nil
	}
	f, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	return syncfsFlusher{root: f}, nil
}

func (f syncfsFlusher) Files([]string) error           { return unix.Syncfs(int(f.root.Fd())) }
func (f syncfsFlusher) Dirs(map[string]struct{}) error { return unix.Syncfs(int(f.root.Fd())) }
func (f syncfsFlusher) Close() error                   { return f.root.Close() }

// syncfsReportsErrors reports whether the running kernel is 5.8 or later.
func syncfsReportsErrors() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 8)
}

// kernelAtLeast parses the major.minor start of a kernel release string.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(release, "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// writeback starts the kernel writing staged files early, from a goroutine
// of its own: sync_file_range(SYNC_FILE_RANGE_WRITE) returns once writeback
// is queued, but may wait for a congested device, and must not hold up the
// writers. When it falls behind, hints are dropped; they only save time.
type writeback struct {
	files chan string
	done  chan struct{}
}

func startWriteback() *writeback {
	w := &writeback{files: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for name := range w.files {
			if f, err := os.Open(name); err == nil {
				unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
				f.Close()
			}
		}
	}()
	return w
}

// hint asks for name to be written soon.
func (w *writeback) hint(name string) {
	select {
	case w.files <- name:
	default:
	}
}

func (w *writeback) stop() {
	close(w.files)
	<-w.done
}
