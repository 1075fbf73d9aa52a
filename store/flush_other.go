//go:build !linux

package store

import "os"

// flusher makes written files and directory changes durable with one fsync
// per file and per directory, where syncfs(2) is not available.
type flusher struct{}

func newFlusher(string) (flusher, error) { return flusher{}, nil }

// writeback is a no-op where sync_file_range(2) does not exist.
type writeback struct{}

func startWriteback() *writeback { return &writeback{} }
func (*writeback) hint(string)   {}
func (*writeback) stop()         {}

func (flusher) Files(names []string) error {
	for _, n := range names {
		if err := syncPath(n); err != nil {
			return err
		}
	}
	return nil
}

func (flusher) Dirs(dirs map[string]struct{}) error {
	for d := range dirs {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	return nil
}

func (flusher) Close() error { return nil }

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
