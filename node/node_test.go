package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"

	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/store"
)

// smallParams make chunks small enough that tests of a few hundred KiB
// exercise many chunks.
var smallParams = store.Params{Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}

func newRepo(t *testing.T, opts Options) (*Node, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	n, err := Init(context.Background(), dir, InitOptions{Params: smallParams}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, dir
}

func openRepo(t *testing.T, dir string, opts Options) *Node {
	t.Helper()
	n, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func randomData(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 7}).Read(b)
	return b
}

func writeFile(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// getBytes reads an object's version (0: newest) back through Get.
func getBytes(t *testing.T, n *Node, name string, version int64) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	_, err := n.Get(context.Background(), pfx(name), "-", GetOptions{Version: version, Stdout: &buf})
	return buf.Bytes(), err
}

func mustCheck(t *testing.T, n *Node) gc.Report {
	t.Helper()
	rep, err := n.Check(context.Background(), gc.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unrepaired() > 0 {
		t.Fatalf("check found problems: %+v", rep.Findings)
	}
	return rep
}

func TestPutGetTree(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{})
	src := filepath.Join(t.TempDir(), "photos")
	files := map[string][]byte{
		"a.jpg":        randomData(1, 100<<10),
		"2024/b.jpg":   randomData(2, 33<<10),
		"2024/x/c.txt": []byte("hello\n"),
		"empty":        nil,
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for rel, data := range files {
		p := filepath.Join(src, filepath.FromSlash(rel))
		writeFile(t, p, data, 0o640)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, d := range files {
		total += int64(len(d))
	}
	var lastPut PutProgress
	res, err := n.Put(ctx, []string{src}, PutOptions{Progress: func(p PutProgress) { lastPut = p }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 4 || len(res.Failed) != 0 {
		t.Fatalf("put: %+v", res)
	}
	if !lastPut.Done || lastPut.Files != 4 || lastPut.FilesTotal != 4 || lastPut.Bytes != total ||
		lastPut.BytesTotal != total || lastPut.NewBytes != res.NewBytes {
		t.Fatalf("last put progress %+v, want 4 files and %d bytes", lastPut, total)
	}
	out := filepath.Join(t.TempDir(), "out")
	var lastGet GetProgress
	gr, err := n.Get(ctx, pfx("photos"), out, GetOptions{Progress: func(p GetProgress) { lastGet = p }})
	if err != nil || gr.Files != 4 {
		t.Fatalf("get: %+v, %v", gr, err)
	}
	if !lastGet.Done || lastGet.Files != 4 || lastGet.FilesTotal != 4 || lastGet.Bytes != total || lastGet.BytesTotal != total {
		t.Fatalf("last get progress %+v, want 4 files and %d bytes", lastGet, total)
	}
	for rel, data := range files {
		p := filepath.Join(out, filepath.FromSlash(rel))
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: content differs (%v)", rel, err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: mode %v mtime %v", rel, fi.Mode(), fi.ModTime())
		}
	}
	// A second put of the same tree adds nothing.
	res, err = n.Put(ctx, []string{src}, PutOptions{})
	if err != nil || res.Unchanged != 4 || res.NewBytes != 0 {
		t.Fatalf("re-put: %+v, %v", res, err)
	}
	mustCheck(t, n)
}

func TestPutDeduplicates(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{})
	dir := t.TempDir()
	data := randomData(3, 300<<10)
	writeFile(t, filepath.Join(dir, "one"), data, 0o644)
	writeFile(t, filepath.Join(dir, "two"), data, 0o644)
	r1, err := n.Put(ctx, []string{filepath.Join(dir, "one")}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := n.Put(ctx, []string{filepath.Join(dir, "two")}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.NewChunks != 0 || r2.ReusedChunks != r1.NewChunks || r2.NewBytes != 0 {
		t.Fatalf("second copy stored data: first %+v, second %+v", r1, r2)
	}
	st, err := n.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PlainBytes != int64(len(data)) || st.LogicalBytes != 2*int64(len(data)) {
		t.Fatalf("stat: %+v", st.Stats)
	}
}

func TestPutStdinAndNames(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{})
	data := randomData(4, 50<<10)
	res, err := n.Put(ctx, []string{"-"}, PutOptions{As: nm("in/stdin.bin"), Stdin: bytes.NewReader(data)})
	if err != nil || res.Files != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	got, err := getBytes(t, n, "in/stdin.bin", 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stdin round trip: %v", err)
	}
	res, err = n.Put(ctx, []string{"-"}, PutOptions{Stdin: bytes.NewReader(data)})
	if err != nil || len(res.Failed) != 1 || !errors.Is(res.Failed[0].Err, ErrNeedName) {
		t.Fatalf("stdin without a name: %+v %v", res, err)
	}
}

// TestGetCorruptChunk: a flipped byte in a stored chunk makes get fail with
// an integrity error naming object and chunk, and leaves no file behind.
func TestGetCorruptChunk(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{SmallMax: -1}) // chunk files, to damage (rows: store's suite)
	src := filepath.Join(t.TempDir(), "doc.bin")
	writeFile(t, src, randomData(5, 200<<10), 0o644)
	if _, err := n.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := n.Catalog().Head(ctx, nm("doc.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var victim store.ID
	i := 0
	n.Catalog().Chunks(ctx, v, 0, func(_ int64, r catalog.ChunkRef) error {
		if i == 3 {
			victim = r.ID
		}
		i++
		return nil
	})
	path := n.disk.Path(victim)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	dst := filepath.Join(out, "doc.bin")
	_, err = n.Get(ctx, pfx("doc.bin"), dst, GetOptions{})
	var ie *store.IntegrityError
	if !errors.As(err, &ie) || ie.Object != "doc.bin" || ie.ID != victim {
		t.Fatalf("get of a corrupt object: %v", err)
	}
	if !strings.Contains(err.Error(), "doc.bin") || !strings.Contains(err.Error(), victim.String()) {
		t.Fatalf("error does not name object and chunk: %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("get left files behind: %v", ents)
	}
	rep, err := n.Check(ctx, gc.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unrepaired() != 1 || rep.Findings[0].Kind != gc.KindCorrupt || rep.Findings[0].Chunk != victim.String() ||
		len(rep.Findings[0].Users) != 1 || rep.Findings[0].Users[0] != "doc.bin@v1" {
		t.Fatalf("check: %+v", rep.Findings)
	}
	// Without --read-data the size still matches, so only reading finds it.
	if rep, _ := n.Check(ctx, gc.CheckOptions{}); rep.Unrepaired() != 0 {
		t.Fatalf("check without reading: %+v", rep.Findings)
	}
}

// fullDisk stages chunk files that fail with ENOSPC once limit bytes have
// been written in total.
type fullDisk struct {
	mu    sync.Mutex
	left  int64
	calls int
}

type enospcFile struct {
	*os.File
	d *fullDisk
}

func (f enospcFile) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if int64(len(p)) > f.d.left {
		n, _ := f.File.Write(p[:f.d.left])
		f.d.left = 0
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.d.left -= int64(len(p))
	return f.File.Write(p)
}

func (d *fullDisk) create(dir, pattern string) (store.TempFile, error) {
	d.mu.Lock()
	d.calls++
	d.mu.Unlock()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return enospcFile{f, d}, nil
}

func TestPutDiskFull(t *testing.T) {
	ctx := context.Background()
	full := &fullDisk{left: 100 << 10}
	n, dir := newRepo(t, Options{CreateTemp: full.create, SmallMax: -1})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), randomData(6, 40<<10), 0o644)
	writeFile(t, filepath.Join(src, "b"), randomData(7, 400<<10), 0o644)
	_, err := n.Put(ctx, []string{src}, PutOptions{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("put on a full disk: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, chunksDir, "tmp")); len(ents) != 0 {
		t.Fatalf("staged files left behind: %d", len(ents))
	}
	mustCheck(t, n)
	// With space again, the same put succeeds and everything reads back.
	full.mu.Lock()
	full.left = 1 << 40
	full.mu.Unlock()
	res, err := n.Put(ctx, []string{src}, PutOptions{})
	if err != nil || res.Files+res.Unchanged != 2 {
		t.Fatalf("put after space came back: %+v %v", res, err)
	}
	mustCheck(t, n)
}

// pausingCreate blocks the first staging of a chunk until released, so a
// test can act while a put is between deciding and committing. Later
// stagings go ahead (a sync.Once would block them all).
type pausingCreate struct {
	first   atomic.Bool
	reached chan struct{}
	release chan struct{}
}

func newPausingCreate() *pausingCreate {
	return &pausingCreate{reached: make(chan struct{}), release: make(chan struct{})}
}

func (p *pausingCreate) create(dir, pattern string) (store.TempFile, error) {
	if p.first.CompareAndSwap(false, true) {
		close(p.reached)
		<-p.release
	}
	return os.CreateTemp(dir, pattern)
}

// TestGCDuringPutKeepsReusedChunks: a put reuses chunks of an object that
// is then deleted and swept with no grace while the put is still running.
// The put's version must read back intact: GC spares garbage made after the
// oldest live write session began.
func TestGCDuringPutKeepsReusedChunks(t *testing.T) {
	for _, deleteFirst := range []bool{false, true} {
		name := "referenced when seen"
		if deleteFirst {
			name = "unreferenced when seen"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			pause := newPausingCreate()
			n, dir := newRepo(t, Options{})
			other := openRepo(t, dir, Options{}) // as a second process would
			// One version kept: a delete makes the content garbage at once.
			if err := other.ConfigSet(ctx, "keep-versions", "1"); err != nil {
				t.Fatal(err)
			}
			src := t.TempDir()
			old := randomData(8, 256<<10)
			writeFile(t, filepath.Join(src, "old"), old, 0o644)
			if _, err := other.Put(ctx, []string{filepath.Join(src, "old")}, PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if deleteFirst {
				if _, err := other.Remove(ctx, nms("old"), false); err != nil {
					t.Fatal(err)
				}
				// A later change, so that the garbage is older than the
				// put's session and only Protect can keep it.
				if err := other.ConfigSet(ctx, "gc-grace", "1h"); err != nil {
					t.Fatal(err)
				}
			}
			// The new tree holds the old content (reused) and new content
			// (staged, which pauses).
			tree := filepath.Join(t.TempDir(), "tree")
			writeFile(t, filepath.Join(tree, "copy"), old, 0o644)
			fresh := randomData(9, 64<<10)
			writeFile(t, filepath.Join(tree, "zfresh"), fresh, 0o644)

			putter := openRepo(t, dir, Options{CreateTemp: pause.create, SmallMax: -1})
			errc := make(chan error, 1)
			go func() {
				_, err := putter.Put(ctx, []string{tree}, PutOptions{})
				errc <- err
			}()
			select {
			case <-pause.reached:
			case err := <-errc:
				t.Fatalf("put ended before staging anything: %v", err)
			}
			if deleteFirst {
				// Let the put look at (and protect) every old chunk first.
				waitFor(t, func() bool { return protected(t, n, chunkIDs(old)) })
			} else {
				if _, err := other.Remove(ctx, nms("old"), false); err != nil {
					t.Fatal(err)
				}
			}
			if g, err := other.GC(ctx, GCOptions{Grace: 0}); err != nil || g.Pending.Chunks == 0 {
				t.Fatalf("gc during the put: %+v %v (the deleted content must be garbage it has to spare)", g, err)
			}
			close(pause.release)
			if err := <-errc; err != nil {
				t.Fatalf("put: %v", err)
			}
			for name, want := range map[string][]byte{"tree/copy": old, "tree/zfresh": fresh} {
				got, err := getBytes(t, n, name, 0)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s after gc during put: %v", name, err)
				}
			}
			mustCheck(t, n)
			// Once no version references the data and no put runs, it goes.
			if _, err := n.Remove(ctx, nms("tree"), true); err != nil {
				t.Fatal(err)
			}
			r, err := n.GC(ctx, GCOptions{Grace: 0})
			if err != nil {
				t.Fatal(err)
			}
			if r.Chunks == 0 || r.Pending.Chunks != 0 {
				t.Fatalf("gc after delete: %+v", r)
			}
			mustCheck(t, n)
		})
	}
}

// waitFor polls cond until it holds, for at most ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// chunkIDs returns the IDs of data's chunks under smallParams.
func chunkIDs(data []byte) []store.ID {
	var ids []store.ID
	ch := store.NewChunker(bytes.NewReader(data), smallParams)
	for {
		c, err := ch.Next()
		if err != nil {
			return ids
		}
		ids = append(ids, store.Sum(c))
	}
}

// protected reports whether every chunk in ids is unreferenced and
// protected by the one live write session.
func protected(t *testing.T, n *Node, ids []store.ID) bool {
	ctx := context.Background()
	ss, err := n.Catalog().Sessions(ctx)
	if err != nil || len(ss) != 1 {
		return false
	}
	for _, id := range ids {
		st, err := n.Catalog().Lookup(ctx, id)
		if err != nil || !st.Known || st.Refs != 0 || st.ZeroSeq < ss[0].StartSeq {
			return false
		}
	}
	return true
}

// TestConcurrentPutsAndGC runs two writers on overlapping data, deletes and
// a collector with no grace period at the same time, each with its own open
// repository as separate processes would have. Every committed version must
// read back byte-identical afterwards.
func TestConcurrentPutsAndGC(t *testing.T) {
	ctx := context.Background()
	_, dir := newRepo(t, Options{})
	// A pool of blocks; each file is a sequence of blocks, so files share
	// chunks with each other and with earlier versions.
	blocks := make([][]byte, 12)
	for i := range blocks {
		blocks[i] = randomData(uint64(100+i), 20<<10)
	}
	content := func(writer, round int) []byte {
		rng := rand.New(rand.NewPCG(uint64(writer), uint64(round)))
		var b []byte
		for range 4 + rng.IntN(6) {
			b = append(b, blocks[rng.IntN(len(blocks))]...)
		}
		return b
	}
	var mu sync.Mutex
	want := map[[32]byte]bool{} // digests of every committed content
	const rounds = 12
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := Open(ctx, dir, Options{})
			if err != nil {
				errs <- err
				return
			}
			defer n.Close()
			src := t.TempDir()
			for r := range rounds {
				data := content(w, r)
				name := []string{"shared", "own" + string(rune('a'+w))}[r%2]
				p := filepath.Join(src, name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					errs <- err
					return
				}
				if _, err := n.Put(ctx, []string{p}, PutOptions{}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[sha256.Sum256(data)] = true
				mu.Unlock()
				if r%3 == 2 {
					if _, err := n.Remove(ctx, nms(name), false); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	stop := make(chan struct{})
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		n, err := Open(ctx, dir, Options{})
		if err != nil {
			errs <- err
			return
		}
		defer n.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := n.GC(ctx, GCOptions{Grace: 0}); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-gcDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := openRepo(t, dir, Options{})
	checked := 0
	for _, name := range []string{"shared", "owna", "ownb"} {
		vs, err := n.Versions(ctx, nm(name))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.Deleted {
				continue
			}
			got, err := getBytes(t, n, name, v.Num)
			if err != nil {
				t.Fatalf("%s version %d: %v", name, v.Num, err)
			}
			if sum := sha256.Sum256(got); sum != v.SHA256 || !want[sum] {
				t.Fatalf("%s version %d reads back different content", name, v.Num)
			}
			checked++
		}
	}
	if checked < 4 {
		t.Fatalf("only %d versions checked", checked)
	}
	mustCheck(t, n)
}

// TestRemoveRestoreGC covers tombstones, undelete and what gc keeps.
func TestRemoveRestoreGC(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{})
	src := filepath.Join(t.TempDir(), "f")
	v1, v2 := randomData(10, 30<<10), randomData(11, 30<<10)
	writeFile(t, src, v1, 0o644)
	if _, err := n.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, v2, 0o644)
	if _, err := n.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Remove(ctx, nms("f"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := getBytes(t, n, "f", 0); !errors.Is(err, catalog.ErrDeleted) {
		t.Fatalf("get of a deleted object: %v", err)
	}
	// Nothing is garbage yet: every version is still kept.
	if r, err := n.GC(ctx, GCOptions{Grace: 0}); err != nil || r.Chunks != 0 {
		t.Fatalf("gc: %+v %v", r, err)
	}
	r, err := n.Restore(ctx, nm("f"), 1)
	if err != nil || r.Num != 4 || r.RestoredFrom != 1 {
		t.Fatalf("restore: %+v %v", r, err)
	}
	if got, err := getBytes(t, n, "f", 0); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("restored content: %v", err)
	}
	// Keep one version: the others are pruned, their chunks become garbage
	// and gc reclaims exactly those of v2.
	if err := n.ConfigSet(ctx, "keep-versions", "1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, v1, 0o600) // new mode: a new version with v1's chunks
	if _, err := n.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	g, err := n.GC(ctx, GCOptions{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if g.Bytes == 0 || g.Chunks == 0 {
		t.Fatalf("gc reclaimed nothing: %+v", g)
	}
	if got, err := getBytes(t, n, "f", 0); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("content after gc: %v", err)
	}
	vs, _ := n.Versions(ctx, nm("f"))
	if len(vs) != 1 {
		t.Fatalf("versions kept: %d", len(vs))
	}
	mustCheck(t, n)
}

// TestGetIntoSymlinkedDirRefused: restoring a tree never writes through a
// symbolic link found inside the destination.
func TestGetIntoSymlinkedDirRefused(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{})
	src := filepath.Join(t.TempDir(), "t")
	writeFile(t, filepath.Join(src, "sub", "f"), []byte("x"), 0o644)
	if _, err := n.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(out, "sub")); err != nil {
		t.Fatal(err)
	}
	res, err := n.Get(ctx, pfx("t"), out, GetOptions{})
	if err != nil || len(res.Failed) != 1 || !errors.Is(res.Failed[0].Err, ErrDestination) {
		t.Fatalf("get through a symlink: %+v %v", res, err)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Fatalf("wrote through the symlink: %v", ents)
	}
}

func TestCheckFindsAndRepairsOrphans(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{})
	data := randomData(12, 10<<10)
	id := store.Sum(data)
	b := n.Store().NewBatch()
	if _, err := b.Add(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rep := mustCheck(t, n) // an orphan is not a problem
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != gc.KindOrphan || rep.Findings[0].Problem {
		t.Fatalf("orphan finding: %+v", rep.Findings)
	}
	rep, err := n.Check(ctx, gc.CheckOptions{Repair: true})
	if err != nil || !rep.Findings[0].Repaired {
		t.Fatalf("repair: %+v %v", rep.Findings, err)
	}
	if _, err := n.Store().Stat(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("orphan still there: %v", err)
	}
}

func TestListOrder(t *testing.T) {
	ctx := context.Background()
	n, _ := newRepo(t, Options{})
	for _, name := range []string{"b/x", "a", "b-c", "b/y/z"} {
		if _, err := n.Put(ctx, []string{"-"}, PutOptions{As: nm(name), Stdin: strings.NewReader(name)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	n.List(ctx, pfx(""), catalog.ListOptions{}, func(e catalog.Entry) error {
		got = append(got, e.Name)
		return nil
	})
	if !sort.StringsAreSorted(got) || strings.Join(got, " ") != "a b-c b/" {
		t.Fatalf("listing: %v", got)
	}
}

// TestInitAfterInterruptedInit: an init that stopped after writing the
// node key is finished by the next one, keeping the key.
func TestInitAfterInterruptedInit(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	n, err := Init(ctx, dir, InitOptions{Params: smallParams}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := n.ID()
	n.Close()
	for _, f := range []string{catalogFile, catalogFile + "-wal", catalogFile + "-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	n, err = Init(ctx, dir, InitOptions{Params: smallParams}, Options{})
	if err != nil {
		t.Fatalf("init after an interrupted init: %v", err)
	}
	defer n.Close()
	if n.ID() != id {
		t.Fatal("the node ID changed")
	}
	if _, err := Init(ctx, dir, InitOptions{}, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("init over a repository: %v", err)
	}
}

// TestFilterCaughtUpPerPut: a node that loaded its chunk filter earlier
// still finds chunks another process added since: the put reuses them
// instead of writing its own copies (which a sweep could take).
func TestFilterCaughtUpPerPut(t *testing.T) {
	ctx := context.Background()
	n, dir := newRepo(t, Options{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "first"), randomData(20, 20<<10), 0o644)
	if _, err := n.Put(ctx, []string{filepath.Join(src, "first")}, PutOptions{}); err != nil {
		t.Fatal(err) // n has loaded its filter now
	}
	data := randomData(21, 200<<10)
	writeFile(t, filepath.Join(src, "other"), data, 0o644)
	m := openRepo(t, dir, Options{})
	r1, err := m.Put(ctx, []string{filepath.Join(src, "other")}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "mine"), data, 0o644)
	r2, err := n.Put(ctx, []string{filepath.Join(src, "mine")}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.NewChunks != 0 || r2.ReusedChunks != r1.NewChunks {
		t.Fatalf("the long-lived node wrote chunks another process had added: %+v", r2)
	}
}

// blockingWriter blocks its first Write until released.
type blockingWriter struct {
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.reached)
		<-w.release
	})
	return len(p), nil
}

// TestGetOfVersionPrunedMeanwhile: a version pruned and collected while get
// reads it is reported as gone (not found), not as corrupt data.
func TestGetOfVersionPrunedMeanwhile(t *testing.T) {
	ctx := context.Background()
	n, dir := newRepo(t, Options{})
	if err := n.ConfigSet(ctx, "keep-versions", "1"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	writeFile(t, src, randomData(30, 4<<20), 0o644) // about 1000 chunks: two pages of the chunk list
	if _, err := n.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	w := &blockingWriter{reached: make(chan struct{}), release: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := n.Get(ctx, pfx("f"), "-", GetOptions{Stdout: w})
		errc <- err
	}()
	<-w.reached
	other := openRepo(t, dir, Options{})
	writeFile(t, src, randomData(31, 10<<10), 0o644)
	if _, err := other.Put(ctx, []string{src}, PutOptions{}); err != nil { // prunes version 1
		t.Fatal(err)
	}
	if _, err := other.GC(ctx, GCOptions{Grace: 0}); err != nil {
		t.Fatal(err)
	}
	close(w.release)
	err := <-errc
	if !errors.Is(err, catalog.ErrNotFound) || errors.Is(err, store.ErrIntegrity) || !strings.Contains(err.Error(), "pruned while it was read") {
		t.Fatalf("get of a version pruned meanwhile: %v", err)
	}
}
