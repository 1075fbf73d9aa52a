package store

import "os"

// flusher makes staged files and directory changes durable.
type flusher interface {
	// Files makes the named files' contents durable.
	Files(names []string) error
	// Dirs makes entries created or renamed in the directories durable.
	Dirs(dirs map[string]struct{}) error
	Close() error
}

// fsyncFlusher flushes with one fsync per file and per directory: the
// portable way, and the one whose errors every kernel reports.
type fsyncFlusher struct{}

func (fsyncFlusher) Files(names []string) error {
	for _, n := range names {
		if err := syncPath(n); err != nil {
			return err
		}
	}
	return nil
}

func (fsyncFlusher) Dirs(dirs map[string]struct{}) error {
	for d := range dirs {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	return nil
}

func (fsyncFlusher) Close() error { return nil }

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
