package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Mem is a Store in memory. It holds plain bytes and reports their length as
// the stored size. It serves tests and, later, bounded caches.
type Mem struct {
	mu     sync.Mutex
	chunks map[ID]memChunk
	now    func() time.Time
}

type memChunk struct {
	data    []byte
	modTime time.Time
}

// NewMem returns an empty memory store. now supplies modification times; nil
// means time.Now.
func NewMem(now func() time.Time) *Mem {
	if now == nil {
		now = time.Now
	}
	return &Mem{chunks: make(map[ID]memChunk), now: now}
}

func (m *Mem) Get(ctx context.Context, id ID, buf []byte) ([]byte, error) {
	m.mu.Lock()
	c, ok := m.chunks[id]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("chunk %s: %w", id, ErrNotFound)
	}
	out := append(buf[:0], c.data...) // a copy: callers own what Get returns
	if err := Verify(id, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Mem) Stat(ctx context.Context, id ID) (Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chunks[id]
	if !ok {
		return Info{}, fmt.Errorf("chunk %s: %w", id, ErrNotFound)
	}
	return Info{ID: id, Stored: int64(len(c.data)), ModTime: c.modTime}, nil
}

func (m *Mem) Walk(ctx context.Context, fn func(Info) error) error {
	m.mu.Lock()
	infos := make([]Info, 0, len(m.chunks))
	for id, c := range m.chunks {
		infos = append(infos, Info{ID: id, Stored: int64(len(c.data)), ModTime: c.modTime})
	}
	m.mu.Unlock()
	for _, in := range infos {
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mem) RemoveIfOlder(ctx context.Context, id ID, cutoff time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chunks[id]
	if !ok || !c.modTime.Before(cutoff) {
		return false, nil
	}
	delete(m.chunks, id)
	return true, nil
}

func (m *Mem) Remove(ctx context.Context, id ID) error {
	m.mu.Lock()
	delete(m.chunks, id)
	m.mu.Unlock()
	return nil
}

func (m *Mem) CleanTemp(context.Context, time.Time) (int, error) { return 0, nil }

// Corrupt replaces a chunk's bytes, for tests of integrity checks.
func (m *Mem) Corrupt(id ID, data []byte) {
	m.mu.Lock()
	m.chunks[id] = memChunk{data: data, modTime: m.now()}
	m.mu.Unlock()
}

func (m *Mem) NewBatch() Batch { return &memBatch{m: m} }

type memBatch struct {
	m        *Mem
	commitMu sync.Mutex
	mu       sync.Mutex
	staged   map[ID][]byte
}

func (b *memBatch) Add(ctx context.Context, id ID, plain []byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.staged == nil {
		b.staged = make(map[ID][]byte)
	}
	b.staged[id] = append([]byte(nil), plain...)
	return int64(len(plain)), nil
}

func (b *memBatch) Commit(ctx context.Context) error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	staged := b.staged
	b.staged = nil
	b.mu.Unlock()
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	for id, data := range staged {
		b.m.chunks[id] = memChunk{data: data, modTime: b.m.now()}
	}
	return nil
}

func (b *memBatch) Abort() {
	b.mu.Lock()
	b.staged = nil
	b.mu.Unlock()
}
