package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests of Disk beyond the Store conformance suite.

func tmpNames(t testing.TB, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func wantTmpEmpty(t testing.TB, root string) {
	t.Helper()
	if names := tmpNames(t, root); len(names) != 0 {
		t.Fatalf("tmp holds %v, want nothing", names)
	}
}

func TestDiskLayout(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	ctx := context.Background()
	plain, plainID := chunk(1, 5000, false)
	comp, compID := chunk(2, 5000, true)

	b := d.NewBatch()
	sizes := map[ID]int64{plainID: mustAdd(t, b, plainID, plain), compID: mustAdd(t, b, compID, comp)}
	if names := tmpNames(t, root); len(names) != 2 {
		t.Fatalf("tmp holds %v after two Adds, want two staged files", names)
	}
	for _, n := range tmpNames(t, root) {
		if !strings.HasPrefix(n, tmpPrefix) {
			t.Fatalf("staged file %q lacks the prefix %q", n, tmpPrefix)
		}
	}
	mustCommit(t, b)
	wantTmpEmpty(t, root)

	for id, data := range map[ID][]byte{plainID: plain, compID: comp} {
		h := id.String()
		want := filepath.Join(root, h[:2], h[2:4], h)
		if d.Path(id) != want {
			t.Fatalf("Path = %s, want %s", d.Path(id), want)
		}
		stored, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(stored)) != sizes[id] {
			t.Fatalf("file has %d bytes, Add said %d", len(stored), sizes[id])
		}
		hdr, err := ParseHeader(stored)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.PlainSize != len(data) {
			t.Fatalf("header says %d plain bytes, want %d", hdr.PlainSize, len(data))
		}
		wantCodec := CodecPlain
		if id == compID {
			wantCodec = CodecZstd
		}
		if hdr.Codec != wantCodec {
			t.Fatalf("stored with %v, want %v", hdr.Codec, wantCodec)
		}
		in, err := d.Stat(ctx, id)
		if err != nil || in.Stored != int64(len(stored)) {
			t.Fatalf("Stat = %+v, %v; want %d stored bytes", in, err, len(stored))
		}
	}

	// Nothing but tmp and the chunk directories appears under root.
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		parts := strings.Split(rel, string(filepath.Separator))
		switch {
		case rel == "." || rel == "tmp":
		case e.IsDir() && len(parts) <= 2 && isHexPair(parts[len(parts)-1]):
		case !e.IsDir() && len(parts) == 3 && (parts[2] == plainID.String() || parts[2] == compID.String()):
		default:
			t.Errorf("unexpected %s in the store", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDiskReopen(t *testing.T) {
	root := t.TempDir()
	d1, err := OpenDisk(root, newTestCodecs(t, 1), DiskOptions{SmallMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	data, id := chunk(3, 3000, true)
	put(t, d1, data)
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	wantChunk(t, d2, id, data)
	wantWalk(t, d2, id)
}

func TestDiskOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := OpenDisk(file, newTestCodecs(t, 1), DiskOptions{SmallMax: -1}); err == nil {
		d.Close()
		t.Fatal("OpenDisk on a regular file succeeded")
	}
}

func TestDiskAbortRemovesTemp(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	committed, committedID := chunk(4, 1000, false)
	b := d.NewBatch()
	mustAdd(t, b, committedID, committed)
	mustCommit(t, b)
	var ids []ID
	for i := 0; i < 3; i++ {
		data, id := chunk(uint64(10+i), 2000, i == 1)
		mustAdd(t, b, id, data)
		ids = append(ids, id)
	}
	if n := len(tmpNames(t, root)); n != 3 {
		t.Fatalf("%d staged files, want 3", n)
	}
	b.Abort()
	wantTmpEmpty(t, root)
	for _, id := range ids {
		wantAbsent(t, d, id)
	}
	wantChunk(t, d, committedID, committed)
}

func TestDiskCommitCancelled(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	data, id := chunk(5, 1000, false)
	b := d.NewBatch()
	mustAdd(t, b, id, data)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Commit(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context: %v, want context.Canceled", err)
	}
	wantAbsent(t, d, id)
	// The batch is unusable now.
	if err := b.Commit(context.Background()); err == nil {
		t.Fatal("Commit after a failed Commit succeeded")
	}
	wantAbsent(t, d, id)
}

func TestDiskAbortAfterFailedCommit(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	data, id := chunk(6, 1000, false)
	b := d.NewBatch()
	mustAdd(t, b, id, data)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Commit(cctx); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	b.Abort()
	wantTmpEmpty(t, root)
	wantAbsent(t, d, id)
}

func TestDiskAbortAfterRepeatedFailedCommit(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	data, id := chunk(7, 1000, false)
	b := d.NewBatch()
	mustAdd(t, b, id, data)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Commit(cctx); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if err := b.Commit(context.Background()); err == nil {
		t.Fatal("Commit after a failed Commit succeeded")
	}
	b.Abort()
	wantTmpEmpty(t, root)
	wantAbsent(t, d, id)
}

func TestDiskCleanTemp(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	ctx := context.Background()
	tmp := filepath.Join(root, "tmp")
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	for _, name := range []string{"w-old1", "w-old2", "rm-old", "w-new"} {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "new") {
			continue
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	committed, committedID := chunk(8, 1000, false)
	put(t, d, committed)
	// A chunk staged by a batch in progress.
	pending, pendingID := chunk(9, 1000, false)
	b := d.NewBatch()
	defer b.Abort()
	mustAdd(t, b, pendingID, pending)

	n, err := d.CleanTemp(ctx, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("CleanTemp removed %d files, want 3", n)
	}
	names := tmpNames(t, root)
	if len(names) != 2 || names[1] != "w-new" || !strings.HasPrefix(names[0], tmpPrefix+pendingID.Short()) {
		t.Fatalf("tmp holds %v, want the staged chunk and w-new", names)
	}
	mustCommit(t, b)
	wantChunk(t, d, pendingID, pending)
	wantChunk(t, d, committedID, committed)

	n, err = d.CleanTemp(ctx, now.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("second CleanTemp = %d, %v; want 1, nil", n, err)
	}
	wantTmpEmpty(t, root)
	wantWalk(t, d, committedID, pendingID)
}

func TestDiskWalkSkipsForeignFiles(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	data, id := chunk(10, 1000, false)
	put(t, d, data)
	other := Sum([]byte("other"))
	h := id.String()
	dir := filepath.Dir(d.Path(id))
	if other.String()[:4] == h[:4] {
		t.Fatal("test IDs share a prefix")
	}
	write := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("foreign"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "notanid"))
	write(filepath.Join(dir, h+".tmp"))
	write(filepath.Join(dir, h[:63]))
	write(filepath.Join(dir, other.String()))         // an ID in the wrong directory
	write(filepath.Join(root, "tmp", other.String())) // tmp is not a chunk directory
	write(filepath.Join(root, "tmp", "ab", "cd", other.String()))
	write(filepath.Join(root, "zz", "yy", other.String()))
	write(filepath.Join(root, "abc", "de", other.String()))
	write(filepath.Join(root, "README"))
	o := other.String()
	write(filepath.Join(root, strings.ToUpper(o[:2]), o[2:4], o))
	// A directory named like the chunk that belongs there.
	if err := os.MkdirAll(filepath.Join(root, o[:2], o[2:4], o), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(d.Path(id), filepath.Join(root, o[:2], o[2:4], Sum([]byte("link")).String())); err != nil {
		t.Fatal(err)
	}
	wantWalk(t, d, id)
}

func TestDiskWalkUppercaseName(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	id := Sum([]byte("upper"))
	h := id.String()
	name := h[:4] + strings.ToUpper(h[4:])
	if name == h {
		t.Fatal("test ID has no letters to change")
	}
	p := filepath.Join(root, h[:2], h[2:4], name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantWalk(t, d)
}

func TestDiskTruncatedChunk(t *testing.T) {
	ctx := context.Background()
	for _, compressible := range []bool{false, true} {
		d := newTestDisk(t, DiskOptions{SmallMax: -1})
		data, id := chunk(11, 20000, compressible)
		put(t, d, data)
		full, err := os.ReadFile(d.Path(id))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 5, headerSize - 1, headerSize, headerSize + 1, len(full) / 2, len(full) - 1} {
			if err := os.WriteFile(d.Path(id), full[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := d.Get(ctx, id, nil)
			if got != nil {
				t.Fatalf("truncated to %d bytes: Get returned %d bytes", n, len(got))
			}
			wantIntegrityError(t, err, id)
		}
		// Appended garbage is corruption too.
		if err := os.WriteFile(d.Path(id), append(full, 0), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = d.Get(ctx, id, nil)
		wantIntegrityError(t, err, id)
	}
}

func TestDiskWrongContentUnderName(t *testing.T) {
	// A well-formed chunk file holding another chunk's bytes.
	d := newTestDisk(t, DiskOptions{SmallMax: -1})
	a, idA := chunk(12, 3000, true)
	b, idB := chunk(13, 3000, true)
	put(t, d, a, b)
	stored, err := os.ReadFile(d.Path(idB))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Path(idA), stored, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = d.Get(context.Background(), idA, nil)
	wantIntegrityError(t, err, idA)
	wantChunk(t, d, idB, b)
}

func TestDiskCancelledContext(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	data, id := chunk(14, 1000, false)
	put(t, d, data)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()

	other, otherID := chunk(15, 1000, false)
	b := d.NewBatch()
	defer b.Abort()
	if _, err := b.Add(cctx, otherID, other); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add: %v, want context.Canceled", err)
	}
	wantTmpEmpty(t, root)
	if _, err := d.Get(cctx, id, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v, want context.Canceled", err)
	}
	if err := d.Walk(cctx, func(Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Walk: %v, want context.Canceled", err)
	}
	dl, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	if _, err := b.Add(dl, otherID, other); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Add past the deadline: %v, want context.DeadlineExceeded", err)
	}
	wantTmpEmpty(t, root)
	wantChunk(t, d, id, data)
}

func TestDiskRemoveIfOlderLeavesNoTemp(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	ctx := context.Background()
	d1, id1 := chunk(16, 1000, false)
	d2, id2 := chunk(17, 1000, false)
	put(t, d, d1, d2)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(d.Path(id1), old, old); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-24 * time.Hour)
	if removed, err := d.RemoveIfOlder(ctx, id1, cutoff); err != nil || !removed {
		t.Fatalf("RemoveIfOlder(old chunk) = %v, %v; want true", removed, err)
	}
	if removed, err := d.RemoveIfOlder(ctx, id2, cutoff); err != nil || removed {
		t.Fatalf("RemoveIfOlder(new chunk) = %v, %v; want false", removed, err)
	}
	wantTmpEmpty(t, root)
	wantAbsent(t, d, id1)
	wantChunk(t, d, id2, d2)
	// Writing a chunk again refreshes its time, so it survives the cutoff.
	put(t, d, d1)
	if removed, err := d.RemoveIfOlder(ctx, id1, cutoff); err != nil || removed {
		t.Fatalf("RemoveIfOlder(rewritten chunk) = %v, %v; want false", removed, err)
	}
	wantChunk(t, d, id1, d1)
}

func TestDiskMaxChunkSize(t *testing.T) {
	d := newTestDisk(t, DiskOptions{SmallMax: -1})
	data := randomBytes(18, MaxChunkSize)
	id := Sum(data)
	put(t, d, data)
	wantChunk(t, d, id, data)
}

func TestDiskOversizedChunk(t *testing.T) {
	d := newTestDisk(t, DiskOptions{SmallMax: -1})
	ctx := context.Background()
	data := randomBytes(19, MaxChunkSize+1)
	id := Sum(data)
	b := d.NewBatch()
	defer b.Abort()
	if _, err := b.Add(ctx, id, data); err != nil {
		// Refusing the chunk is fine; storing what cannot be read is not.
		wantAbsent(t, d, id)
		return
	}
	mustCommit(t, b)
	wantChunk(t, d, id, data)
}

// faultyFile is a real temporary file whose Write accepts only left bytes
// before it fails with writeErr, and whose Close can fail with closeErr.
type faultyFile struct {
	*os.File
	left     int
	writeErr error
	closeErr error
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.writeErr == nil || len(p) <= f.left {
		n, err := f.File.Write(p)
		f.left -= n
		return n, err
	}
	n, err := f.File.Write(p[:f.left])
	f.left -= n
	if err != nil {
		return n, err
	}
	return n, f.writeErr
}

func (f *faultyFile) Close() error {
	err := f.File.Close()
	if f.closeErr != nil {
		return f.closeErr
	}
	return err
}

func TestDiskWriteFault(t *testing.T) {
	ctx := context.Background()
	for _, left := range []int{0, 5, headerSize, 100, 2999} {
		root := t.TempDir()
		good := openTestDisk(t, root, DiskOptions{SmallMax: -1})
		committed, committedID := chunk(20, 3000, false)
		put(t, good, committed)

		full := openTestDisk(t, root, DiskOptions{SmallMax: -1, CreateTemp: func(dir, pattern string) (TempFile, error) {
			f, err := os.CreateTemp(dir, pattern)
			if err != nil {
				return nil, err
			}
			return &faultyFile{File: f, left: left, writeErr: syscall.ENOSPC}, nil
		}})
		data, id := chunk(21, 3000, false)
		b := full.NewBatch()
		n, err := b.Add(ctx, id, data)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Add on a full disk after %d bytes: %d, %v; want ENOSPC", left, n, err)
		}
		wantTmpEmpty(t, root)
		// The failed Add did not poison the batch or the store.
		mustCommit(t, b)
		b.Abort()
		wantAbsent(t, full, id)
		wantChunk(t, full, committedID, committed)
		wantChunk(t, good, committedID, committed)
		wantWalk(t, good, committedID)
		// Once there is space again, the same chunk stores fine.
		put(t, good, data)
		wantChunk(t, good, id, data)
	}
}

func TestDiskCloseFault(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1, CreateTemp: func(dir, pattern string) (TempFile, error) {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		return &faultyFile{File: f, closeErr: syscall.EIO}, nil
	}})
	data, id := chunk(22, 3000, false)
	b := d.NewBatch()
	defer b.Abort()
	if _, err := b.Add(context.Background(), id, data); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Add with a failing Close: %v, want EIO", err)
	}
	wantTmpEmpty(t, root)
	mustCommit(t, b)
	wantAbsent(t, d, id)
}

func TestDiskCreateTempFault(t *testing.T) {
	root := t.TempDir()
	boom := errors.New("no temp for you")
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1, CreateTemp: func(dir, pattern string) (TempFile, error) {
		return nil, boom
	}})
	data, id := chunk(23, 3000, false)
	b := d.NewBatch()
	defer b.Abort()
	if _, err := b.Add(context.Background(), id, data); !errors.Is(err, boom) {
		t.Fatalf("Add with a failing CreateTemp: %v, want %v", err, boom)
	}
	wantTmpEmpty(t, root)
	mustCommit(t, b)
	wantAbsent(t, d, id)
}

func TestDiskCreateTempArgs(t *testing.T) {
	// The store stages chunks in root/tmp, named after the chunk.
	root := t.TempDir()
	var dirs, patterns []string
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1, CreateTemp: func(dir, pattern string) (TempFile, error) {
		dirs = append(dirs, dir)
		patterns = append(patterns, pattern)
		return os.CreateTemp(dir, pattern)
	}})
	data, id := chunk(24, 3000, false)
	put(t, d, data)
	wantChunk(t, d, id, data)
	if len(dirs) != 1 || dirs[0] != filepath.Join(root, "tmp") {
		t.Fatalf("CreateTemp dirs %v, want [%s]", dirs, filepath.Join(root, "tmp"))
	}
	if !strings.HasPrefix(patterns[0], tmpPrefix+id.Short()) {
		t.Fatalf("CreateTemp pattern %q does not name the chunk", patterns[0])
	}
	if !bytes.Contains([]byte(patterns[0]), []byte("*")) {
		t.Fatalf("CreateTemp pattern %q has no random part", patterns[0])
	}
}

func TestDiskWalkStrayFiles(t *testing.T) {
	root := t.TempDir()
	d := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	data, id := chunk(25, 1000, false)
	put(t, d, data)
	for _, p := range []string{filepath.Join(root, "0c"), filepath.Join(root, "0d", "ee")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stray"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantWalk(t, d, id)
}
