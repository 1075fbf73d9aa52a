//go:build !linux

package store

func newFlusher(string) (flusher, error) { return fsyncFlusher{}, nil }

// writeback is a no-op where sync_file_range(2) does not exist.
type writeback struct{}

func startWriteback() *writeback { return &writeback{} }
func (*writeback) hint(string)   {}
func (*writeback) stop()         {}
