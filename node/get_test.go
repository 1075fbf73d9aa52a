package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// claimedSize is a source (a peer over --node, or a catalog row written
// before sizes were checked) whose chunk reference claims a stored size no
// chunk has.
type claimedSize struct {
	data   []byte
	stored int64
}

func (s claimedSize) v() catalog.Version {
	return catalog.Version{Name: "a", Num: 1, Size: int64(len(s.data)), Chunks: 1, SHA256: sha256.Sum256(s.data), Mode: 0o644}
}
func (s claimedSize) Version(context.Context, names.Name, int64) (catalog.Version, error) {
	return s.v(), nil
}
func (s claimedSize) Head(context.Context, names.Name) (catalog.Version, error) { return s.v(), nil }
func (s claimedSize) List(context.Context, names.Prefix, catalog.ListOptions, func(catalog.Entry) error) error {
	return nil
}
func (s claimedSize) Walk(context.Context, names.Prefix, func(catalog.Version) error) error {
	return nil
}
func (s claimedSize) Chunks(ctx context.Context, v catalog.Version, from int64, fn func(int64, catalog.ChunkRef) error) error {
	return fn(0, catalog.ChunkRef{ID: store.Sum(s.data), Plain: int64(len(s.data)), Stored: s.stored})
}
func (s claimedSize) Read(context.Context, store.ID, []byte) ([]byte, error) { return s.data, nil }

// A stored size above any chunk's is refused before it sizes a buffer or
// a read budget: the get fails at once, naming the object, and writes
// nothing.
func TestGetRefusesImpossibleChunkSizes(t *testing.T) {
	n, _ := newRepo(t, Options{})
	for _, stored := range []int64{64 << 20, 1 << 62, 0, -1} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		dir := t.TempDir()
		_, err := n.get(ctx, claimedSize{[]byte("hello"), stored}, names.Must("a").AsPrefix(), dir, GetOptions{})
		blocked := ctx.Err() != nil
		cancel()
		if blocked {
			t.Fatalf("stored %d: get of a 5-byte object blocked until its context ended", stored)
		}
		if fault.Of(err) != fault.Integrity {
			t.Errorf("stored %d: get = %v (kind %v); want an integrity error", stored, err, fault.Of(err))
		}
	}
}

// listsFail is this node's catalog as a source whose batched chunk lists
// cannot be read (a damaged page, a read that failed).
type listsFail struct{ localSource }

func (listsFail) ChunkLists(context.Context, []catalog.Version) ([][]catalog.ChunkRef, error) {
	return nil, fault.E(fault.Integrity, "chunk lists: damaged")
}

// A tree restore whose batched chunk lists cannot be read still restores
// every file: each asks for its own list, as before batching.
func TestTreeRestoreWithoutChunkLists(t *testing.T) {
	ctx := context.Background()
	n, dir := newRepo(t, Options{})
	src := filepath.Join(dir, "src")
	want := map[string][]byte{}
	for i := range 150 { // two batches
		data := randomData(uint64(100+i), 1+i*37)
		name := fmt.Sprintf("f%03d", i)
		writeFile(t, filepath.Join(src, name), data, 0o644)
		want[name] = data
	}
	if _, err := n.Put(ctx, []string{src}, PutOptions{As: names.Must("t")}); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	res, err := n.get(ctx, listsFail{localSource{n.cat, n}}, names.Must("t").AsPrefix(), dest, GetOptions{})
	if err != nil || len(res.Failed) != 0 || res.Files != int64(len(want)) {
		t.Fatalf("restore: %d files, failed %v, err %v", res.Files, res.Failed, err)
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v; want the %d put", name, len(got), err, len(data))
		}
	}
}
