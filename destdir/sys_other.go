//go:build !linux

package destdir

import (
	"os"
	"time"
)

func syncFS(f *os.File) error { return f.Sync() }

// lchtimes is not offered here: links keep the time they were made.
func lchtimes(r *os.Root, display, base string, mtime time.Time) error { return nil }
