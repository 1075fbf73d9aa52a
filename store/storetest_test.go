package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// Conformance suite for Store implementations.

func TestMemStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return NewMem(nil) })
}

// TestDiskStore runs the suite with every chunk a file of its own.
func TestDiskStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newTestDisk(t, DiskOptions{SmallMax: -1}) })
}

// TestDiskStoreSmall runs the suite with every chunk a row of the
// small-chunk database.
func TestDiskStoreSmall(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newTestDisk(t, DiskOptions{SmallMax: MaxStoredSize}) })
}

// TestDiskStoreMixed runs the suite with the default split: the suite's
// chunks of a few KiB are rows, its large ones files.
func TestDiskStoreMixed(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newTestDisk(t, DiskOptions{}) })
}

// TestDiskStoreFsync runs the suite with the fsync-per-file flusher that
// kernels before 5.8 and other systems use.
func TestDiskStoreFsync(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		d := newTestDisk(t, DiskOptions{SmallMax: -1})
		d.flush.Close()
		d.flush = fsyncFlusher{}
		return d
	})
}

func newTestDisk(t testing.TB, opts DiskOptions) *Disk {
	t.Helper()
	return openTestDisk(t, t.TempDir(), opts)
}

func openTestDisk(t testing.TB, root string, opts DiskOptions) *Disk {
	t.Helper()
	d, err := OpenDisk(root, newTestCodecs(t, 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close disk store: %v", err)
		}
	})
	return d
}

// chunk returns test data with its ID; compressible data is stored with zstd
// by Disk, the rest plain.
func chunk(seed uint64, n int, compressible bool) ([]byte, ID) {
	var data []byte
	if compressible {
		unit := []byte(fmt.Sprintf("chunk %d. ", seed))
		data = bytes.Repeat(unit, n/len(unit)+1)[:n]
	} else {
		data = randomBytes(seed, n)
	}
	return data, Sum(data)
}

func mustAdd(t testing.TB, b Batch, id ID, data []byte) int64 {
	t.Helper()
	n, err := b.Add(context.Background(), id, data)
	if err != nil {
		t.Fatalf("Add %s: %v", id.Short(), err)
	}
	return n
}

func mustCommit(t testing.TB, b Batch) {
	t.Helper()
	if err := b.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// put stores chunks in a batch of their own.
func put(t testing.TB, s Store, chunks ...[]byte) []ID {
	t.Helper()
	b := s.NewBatch()
	defer b.Abort()
	ids := make([]ID, len(chunks))
	for i, c := range chunks {
		ids[i] = Sum(c)
		mustAdd(t, b, ids[i], c)
	}
	mustCommit(t, b)
	return ids
}

func wantChunk(t testing.TB, s Store, id ID, data []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), id, nil)
	if err != nil {
		t.Fatalf("Get %s: %v", id.Short(), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Get %s: %d bytes that differ from the %d stored", id.Short(), len(got), len(data))
	}
}

func wantAbsent(t testing.TB, s Store, id ID) {
	t.Helper()
	ctx := context.Background()
	if got, err := s.Get(ctx, id, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get %s = %d bytes, %v; want ErrNotFound", id.Short(), len(got), err)
	}
	if in, err := s.Stat(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat %s = %+v, %v; want ErrNotFound", id.Short(), in, err)
	}
}

func walkAll(t testing.TB, s Store) map[ID]Info {
	t.Helper()
	out := make(map[ID]Info)
	err := s.Walk(context.Background(), func(in Info) error {
		if _, dup := out[in.ID]; dup {
			t.Errorf("Walk listed %s twice", in.ID.Short())
		}
		out[in.ID] = in
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return out
}

func wantWalk(t testing.TB, s Store, ids ...ID) {
	t.Helper()
	got := walkAll(t, s)
	want := IDSet{}
	for _, id := range ids {
		want.Add(id)
	}
	for id := range got {
		if !want.Has(id) {
			t.Fatalf("Walk listed %s, which was not committed", id.Short())
		}
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Fatalf("Walk did not list committed chunk %s", id.Short())
		}
	}
}

// corrupt damages a stored chunk so that it no longer matches its ID.
func corrupt(t *testing.T, s Store, id ID) {
	t.Helper()
	switch s := s.(type) {
	case *Mem:
		s.Corrupt(id, []byte("something else entirely"))
	case *Disk:
		p := s.Path(id)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			corruptRow(t, s, id)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) <= headerSize {
			t.Fatalf("chunk file of %d bytes has no payload", len(b))
		}
		b[headerSize+(len(b)-headerSize)/2] ^= 0x01
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	default:
		t.Skipf("no way to corrupt a %T", s)
	}
}

// corruptRow flips a payload byte of a small chunk, through a connection
// of its own as another program would.
func corruptRow(t *testing.T, d *Disk, id ID) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+smallPath(d.root))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b []byte
	if err := db.QueryRow(`SELECT data FROM chunks WHERE hash = ?`, id[:]).Scan(&b); err != nil {
		t.Fatalf("chunk %s is neither a file nor a row: %v", id, err)
	}
	b[headerSize+(len(b)-headerSize)/2] ^= 0x01
	if _, err := db.Exec(`UPDATE chunks SET data = ? WHERE hash = ?`, b, id[:]); err != nil {
		t.Fatal(err)
	}
}

func wantIntegrityError(t testing.TB, err error, id ID) {
	t.Helper()
	if !errors.Is(err, ErrIntegrity) {
		t.Fatalf("error %v is not ErrIntegrity", err)
	}
	var ie *IntegrityError
	if !errors.As(err, &ie) {
		t.Fatalf("error %T is not an *IntegrityError", err)
	}
	if ie.ID != id {
		t.Fatalf("IntegrityError names %s, want %s", ie.ID.Short(), id.Short())
	}
}

func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("Absent", func(t *testing.T) {
		s := newStore(t)
		_, id := chunk(1, 100, false)
		wantAbsent(t, s, id)
		wantWalk(t, s)
	})

	t.Run("VisibleOnlyAfterCommit", func(t *testing.T) {
		s := newStore(t)
		for _, compressible := range []bool{false, true} {
			data, id := chunk(2, 10000, compressible)
			b := s.NewBatch()
			stored := mustAdd(t, b, id, data)
			if stored <= 0 {
				t.Fatalf("Add returned stored size %d", stored)
			}
			wantAbsent(t, s, id)
			for in := range walkAll(t, s) {
				if in == id {
					t.Fatal("Walk lists a chunk before Commit")
				}
			}
			mustCommit(t, b)
			wantChunk(t, s, id, data)
			in, err := s.Stat(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if in.ID != id || in.Stored != stored || in.ModTime.IsZero() {
				t.Fatalf("Stat = %+v, want ID %s, stored %d (as Add said), a mod time", in, id.Short(), stored)
			}
			b.Abort()
			wantChunk(t, s, id, data)
		}
	})

	t.Run("GetUsesBuffer", func(t *testing.T) {
		s := newStore(t)
		plainData, plainID := chunk(3, 5000, false)
		zData, zID := chunk(4, 5000, true)
		put(t, s, plainData, zData)
		for _, c := range []struct {
			id   ID
			data []byte
		}{{plainID, plainData}, {zID, zData}} {
			buf := bytes.Repeat([]byte{0xEE}, 8000)
			got, err := s.Get(ctx, c.id, buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.data) {
				t.Fatal("Get into a used buffer returned wrong bytes")
			}
			if c.id == plainID && !sameArray(got, buf) {
				t.Fatal("Get did not use buf for a plain chunk though it was large enough")
			}
			// The caller owns what Get returns.
			got[0] ^= 0xff
			wantChunk(t, s, c.id, c.data)
		}
	})

	t.Run("AddCopiesInput", func(t *testing.T) {
		s := newStore(t)
		data, id := chunk(5, 3000, false)
		orig := append([]byte(nil), data...)
		b := s.NewBatch()
		mustAdd(t, b, id, data)
		for i := range data {
			data[i] = 0
		}
		mustCommit(t, b)
		wantChunk(t, s, id, orig)
	})

	t.Run("EmptyChunk", func(t *testing.T) {
		s := newStore(t)
		ids := put(t, s, []byte{})
		got, err := s.Get(ctx, ids[0], nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("Get of the empty chunk = %d bytes, %v", len(got), err)
		}
		wantWalk(t, s, ids[0])
	})

	t.Run("AddTwice", func(t *testing.T) {
		s := newStore(t)
		data, id := chunk(6, 4000, false)
		b := s.NewBatch()
		mustAdd(t, b, id, data)
		mustAdd(t, b, id, data)
		mustCommit(t, b)
		wantChunk(t, s, id, data)
		b2 := s.NewBatch()
		mustAdd(t, b2, id, data)
		mustCommit(t, b2)
		wantChunk(t, s, id, data)
		// In two open batches at once.
		b3, b4 := s.NewBatch(), s.NewBatch()
		mustAdd(t, b3, id, data)
		mustAdd(t, b4, id, data)
		mustCommit(t, b4)
		mustCommit(t, b3)
		wantChunk(t, s, id, data)
		wantWalk(t, s, id)
	})

	t.Run("EmptyCommit", func(t *testing.T) {
		s := newStore(t)
		b := s.NewBatch()
		mustCommit(t, b)
		mustCommit(t, b)
		b.Abort()
		wantWalk(t, s)
	})

	t.Run("SeveralCommits", func(t *testing.T) {
		s := newStore(t)
		d1, id1 := chunk(7, 2000, false)
		d2, id2 := chunk(8, 2000, true)
		b := s.NewBatch()
		mustAdd(t, b, id1, d1)
		mustCommit(t, b)
		wantChunk(t, s, id1, d1)
		mustAdd(t, b, id2, d2)
		wantAbsent(t, s, id2)
		mustCommit(t, b)
		wantChunk(t, s, id1, d1)
		wantChunk(t, s, id2, d2)
		mustCommit(t, b)
		b.Abort()
		wantWalk(t, s, id1, id2)
	})

	t.Run("AbortAfterAdd", func(t *testing.T) {
		s := newStore(t)
		d1, id1 := chunk(9, 2000, false)
		d2, id2 := chunk(10, 2000, true)
		b := s.NewBatch()
		mustAdd(t, b, id1, d1)
		mustAdd(t, b, id2, d2)
		b.Abort()
		wantAbsent(t, s, id1)
		wantAbsent(t, s, id2)
		// Committing an aborted batch does not bring its chunks back.
		mustCommit(t, b)
		b.Abort()
		wantAbsent(t, s, id1)
		wantWalk(t, s)
	})

	t.Run("AbortAfterCommit", func(t *testing.T) {
		s := newStore(t)
		d1, id1 := chunk(11, 2000, false)
		d2, id2 := chunk(12, 2000, false)
		b := s.NewBatch()
		mustAdd(t, b, id1, d1)
		mustCommit(t, b)
		mustAdd(t, b, id2, d2)
		b.Abort()
		b.Abort()
		wantChunk(t, s, id1, d1)
		wantAbsent(t, s, id2)
		wantWalk(t, s, id1)
	})

	t.Run("Walk", func(t *testing.T) {
		s := newStore(t)
		var chunks [][]byte
		for i := 0; i < 6; i++ {
			d, _ := chunk(uint64(20+i), 1000+100*i, i%2 == 0)
			chunks = append(chunks, d)
		}
		ids := put(t, s, chunks...)
		pending, pendingID := chunk(30, 1000, false)
		b := s.NewBatch()
		mustAdd(t, b, pendingID, pending)
		defer b.Abort()

		got := walkAll(t, s)
		wantWalk(t, s, ids...)
		for _, id := range ids {
			st, err := s.Stat(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got[id].Stored != st.Stored || !got[id].ModTime.Equal(st.ModTime) {
				t.Fatalf("Walk says %+v, Stat says %+v", got[id], st)
			}
		}

		stop := errors.New("stop")
		calls := 0
		err := s.Walk(ctx, func(Info) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("Walk with a failing fn: %v after %d calls, want %v after 1", err, calls, stop)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		s := newStore(t)
		d1, id1 := chunk(40, 2000, false)
		d2, id2 := chunk(41, 2000, true)
		put(t, s, d1, d2)
		if err := s.Remove(ctx, id1); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, s, id1)
		wantChunk(t, s, id2, d2)
		if err := s.Remove(ctx, id1); err != nil {
			t.Fatalf("Remove of a removed chunk: %v", err)
		}
		_, never := chunk(42, 10, false)
		if err := s.Remove(ctx, never); err != nil {
			t.Fatalf("Remove of an absent chunk: %v", err)
		}
		wantWalk(t, s, id2)
		// A removed chunk can be stored again.
		put(t, s, d1)
		wantChunk(t, s, id1, d1)
	})

	t.Run("RemoveIfOlder", func(t *testing.T) {
		s := newStore(t)
		d1, id1 := chunk(43, 2000, false)
		d2, id2 := chunk(44, 2000, true)
		put(t, s, d1, d2)
		before, err := s.Stat(ctx, id1)
		if err != nil {
			t.Fatal(err)
		}

		removed, err := s.RemoveIfOlder(ctx, id1, time.Now().Add(-time.Hour))
		if err != nil || removed {
			t.Fatalf("RemoveIfOlder(past cutoff) = %v, %v; want false, nil", removed, err)
		}
		wantChunk(t, s, id1, d1)
		after, err := s.Stat(ctx, id1)
		if err != nil {
			t.Fatal(err)
		}
		if !after.ModTime.Equal(before.ModTime) || after.Stored != before.Stored {
			t.Fatalf("a kept chunk changed: %+v, was %+v", after, before)
		}

		removed, err = s.RemoveIfOlder(ctx, id1, time.Now().Add(time.Hour))
		if err != nil || !removed {
			t.Fatalf("RemoveIfOlder(future cutoff) = %v, %v; want true, nil", removed, err)
		}
		wantAbsent(t, s, id1)
		wantChunk(t, s, id2, d2)

		removed, err = s.RemoveIfOlder(ctx, id1, time.Now().Add(time.Hour))
		if err != nil || removed {
			t.Fatalf("RemoveIfOlder of an absent chunk = %v, %v; want false, nil", removed, err)
		}
		wantWalk(t, s, id2)
	})

	t.Run("ConcurrentAdds", func(t *testing.T) {
		s := newStore(t)
		b := s.NewBatch()
		defer b.Abort()
		const goroutines, each = 8, 8
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		var mu sync.Mutex
		all := make(map[ID][]byte)
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					data, id := chunk(uint64(100+g*each+i), 1000+i*50, i%2 == 0)
					if _, err := b.Add(ctx, id, data); err != nil {
						errs <- err
						continue
					}
					mu.Lock()
					all[id] = data
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		mustCommit(t, b)
		var ids []ID
		for id, data := range all {
			wantChunk(t, s, id, data)
			ids = append(ids, id)
		}
		if len(ids) != goroutines*each {
			t.Fatalf("%d chunks, want %d", len(ids), goroutines*each)
		}
		wantWalk(t, s, ids...)
	})

	t.Run("ConcurrentBatches", func(t *testing.T) {
		// Goroutines with batches of their own, reading while others write.
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := s.NewBatch()
				defer b.Abort()
				for i := 0; i < 10; i++ {
					data, id := chunk(uint64(200+g*10+i), 1500, i%3 == 0)
					if _, err := b.Add(ctx, id, data); err != nil {
						errs <- err
						return
					}
					if i%3 == 2 {
						if err := b.Commit(ctx); err != nil {
							errs <- err
							return
						}
					}
				}
				if err := b.Commit(ctx); err != nil {
					errs <- err
					return
				}
				for i := 0; i < 10; i++ {
					data, id := chunk(uint64(200+g*10+i), 1500, i%3 == 0)
					got, err := s.Get(ctx, id, nil)
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, data) {
						errs <- fmt.Errorf("chunk %s: wrong bytes", id.Short())
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := len(walkAll(t, s)); n != 40 {
			t.Fatalf("Walk lists %d chunks, want 40", n)
		}
	})

	t.Run("ConcurrentCommitWaits", func(t *testing.T) {
		// Batch says Add and Commit may be called from several goroutines
		// and that Commit makes every chunk added so far durable. So once
		// Add and then Commit returned, the chunk is readable, even while
		// another goroutine commits the same batch.
		s := newStore(t)
		b := s.NewBatch()
		defer b.Abort()
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if err := b.Commit(ctx); err != nil {
					done <- err
					return
				}
			}
		}()
		var failed error
		for i := 0; i < 200 && failed == nil; i++ {
			data, id := chunk(uint64(1000+i), 500, false)
			if _, err := b.Add(ctx, id, data); err != nil {
				failed = err
				break
			}
			if err := b.Commit(ctx); err != nil {
				failed = err
				break
			}
			if _, err := s.Get(ctx, id, nil); err != nil {
				failed = fmt.Errorf("chunk %d: after Add and Commit returned: %w", i, err)
			}
		}
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("concurrent Commit: %v", err)
		}
		if failed != nil {
			t.Fatal(failed)
		}
	})

	t.Run("Integrity", func(t *testing.T) {
		s := newStore(t)
		d1, id1 := chunk(50, 6000, false)
		d2, id2 := chunk(51, 6000, true)
		d3, id3 := chunk(52, 6000, false)
		put(t, s, d1, d2, d3)
		for _, id := range []ID{id1, id2} {
			corrupt(t, s, id)
			got, err := s.Get(ctx, id, nil)
			if got != nil {
				t.Fatalf("Get of a corrupt chunk returned %d bytes", len(got))
			}
			wantIntegrityError(t, err, id)
			// The buffer passed in is not filled with bad data either.
			buf := make([]byte, 0, 10000)
			if got, err := s.Get(ctx, id, buf); got != nil || !errors.Is(err, ErrIntegrity) {
				t.Fatalf("Get with a buffer: %d bytes, %v", len(got), err)
			}
		}
		wantChunk(t, s, id3, d3)
		// A corrupt chunk can be replaced by writing it again.
		put(t, s, d1)
		wantChunk(t, s, id1, d1)
	})

	t.Run("CancelledAdd", func(t *testing.T) {
		s := newStore(t)
		data, id := chunk(60, 1000, false)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		b := s.NewBatch()
		defer b.Abort()
		if _, err := b.Add(cctx, id, data); !errors.Is(err, context.Canceled) {
			t.Fatalf("Add with a cancelled context: %v, want context.Canceled", err)
		}
		mustCommit(t, b)
		wantAbsent(t, s, id)
	})

	t.Run("CleanTempKeepsChunks", func(t *testing.T) {
		s := newStore(t)
		d1, id1 := chunk(70, 1000, false)
		put(t, s, d1)
		if _, err := s.CleanTemp(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantChunk(t, s, id1, d1)
		wantWalk(t, s, id1)
	})
}

// sameArray reports whether a lies within b's backing array.
func sameArray(a, b []byte) bool {
	if len(a) == 0 || cap(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b[:cap(b)])))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	return p >= start && p < start+uintptr(cap(b))
}
