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
