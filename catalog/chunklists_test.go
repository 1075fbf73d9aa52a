package catalog

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/loftstore/loft/names"
)

// ChunkLists gives what Chunks gives for every version it lists, and nil
// for the versions Chunks must read: too many chunks, pruned since they
// were listed, not rows of this catalog.
func TestChunkLists(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t, Options{})
	var vs []Version
	wantNil := map[int]bool{}
	for i := range 250 { // three queries' worth
		var chunks []int
		switch {
		case i%50 == 7:
			chunks = make([]int, ListedChunks+1) // too many: nil
			for j := range chunks {
				chunks[j] = 1000 + j
			}
			wantNil[len(vs)] = true
		case i%10 == 3:
			// empty: an empty list, not nil
		default:
			chunks = []int{i, i + 1, i % 5} // a chunk shared with others
			chunks = chunks[:1+i%3]
		}
		vs = append(vs, add(t, c, nv(fmt.Sprintf("f/%03d", i), fmt.Sprint(i), chunks...)).Version)
	}
	// A version pruned after it was listed has no rows left.
	if _, err := del(c, "f/100"); err != nil {
		t.Fatal(err)
	}
	var purged int64
	if err := c.Tx(ctx, func(tx *Tx) error {
		var err error
		purged, err = tx.Purge(ctx, names.Must("f/100"))
		return err
	}); err != nil || purged == 0 {
		t.Fatalf("purge f/100: %d, %v", purged, err)
	}
	wantNil[100] = true
	// A version that is not a row here (a peer's, as a remote list gives).
	vs = append(vs, Version{Name: "elsewhere", Num: 1, Chunks: 1})
	wantNil[len(vs)-1] = true

	lists, err := c.ChunkLists(ctx, vs)
	if err != nil {
		t.Fatal(err)
	}
	if len(lists) != len(vs) {
		t.Fatalf("%d lists for %d versions", len(lists), len(vs))
	}
	for i, v := range vs {
		got := lists[i]
		if wantNil[i] {
			if got != nil {
				t.Errorf("%s: list of %d chunks, want nil", v.Name, len(got))
			}
			continue
		}
		if got == nil {
			t.Errorf("%s: nil list", v.Name)
			continue
		}
		var want []ChunkRef
		if err := c.Chunks(ctx, v, 0, func(_ int64, r ChunkRef) error { want = append(want, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || int64(len(got)) != v.Chunks {
			t.Errorf("%s: ChunkLists %v, Chunks %v (version says %d)", v.Name, got, want, v.Chunks)
		}
	}
}
