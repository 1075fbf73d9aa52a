package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/loftstore/loft/store"
)

// candidates are the chunking parameters compared; each has min = avg/4 and
// max = avg*4, FastCDC's usual shape.
func candidates() []store.Params {
	var out []store.Params
	for _, avg := range []int{64 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20} {
		out = append(out, store.Params{Min: avg / 4, Avg: avg, Max: avg * 4})
	}
	return out
}

// params prints, for each candidate: chunker speed, bytes re-stored after
// shifted edits, chunks per GiB (catalog rows), and end-to-end put speed.
// The README's choice of defaults rests on this table.
func (b *bench) params(ctx context.Context, sz sizes) error {
	fmt.Println("chunking parameters:")
	data := randomBytes(int(sz.paramLen), 21)
	const edits = 100
	edited := insertEdits(data, edits, 22)
	file := filepath.Join(b.dir, "param.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	defer os.Remove(file)
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "min\tavg\tmax\tchunker MB/s\tchunks/GiB\tre-stored after 100 inserts\tx (edits*avg)\tput MB/s\t")
	for i, p := range candidates() {
		ch := store.NewChunker(nil, p)
		speed := measure(func() int64 {
			ch.Reset(bytesReader(data), p)
			for {
				if _, err := ch.Next(); err != nil {
					return int64(len(data))
				}
			}
		})
		before := chunkSet(data, p)
		after := chunkSet(edited, p)
		var restored int64
		for id, n := range after {
			if _, ok := before[id]; !ok {
				restored += n
			}
		}
		perGiB := float64(len(before)) * float64(1<<30) / float64(len(data))
		repo, err := b.initRepo(ctx, fmt.Sprintf("repo-param-%d", i),
			"--chunk-min", fmt.Sprint(p.Min), "--chunk-avg", fmt.Sprint(p.Avg), "--chunk-max", fmt.Sprint(p.Max))
		if err != nil {
			return err
		}
		_, rate, _, err := b.put(ctx, repo, file, "--as", "param.bin")
		os.RemoveAll(repo)
		if err != nil {
			return err
		}
		mark := ""
		if p == store.DefaultParams() {
			mark = "  <- default"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.0f\t%s\t%.2f\t%.0f\t%s\n", human(int64(p.Min)), human(int64(p.Avg)), human(int64(p.Max)),
			speed, perGiB, human(restored), float64(restored)/float64(edits*p.Avg), rate, mark)
	}
	return tw.Flush()
}

// chunkSet maps the ID of every chunk of data to its length.
func chunkSet(data []byte, p store.Params) map[store.ID]int64 {
	out := make(map[store.ID]int64)
	ch := store.NewChunker(bytesReader(data), p)
	for {
		c, err := ch.Next()
		if err != nil {
			return out
		}
		out[store.Sum(c)] = int64(len(c))
	}
}

// insertEdits returns data with n inserts of 1-64 random bytes at random offsets.
func insertEdits(data []byte, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	offs := make([]int, n)
	for i := range offs {
		offs[i] = rng.IntN(len(data))
	}
	slices.Sort(offs)
	out := make([]byte, 0, len(data)+n*64)
	pos := 0
	for _, o := range offs {
		out = append(out, data[pos:o]...)
		pos = o
		for range 1 + rng.IntN(64) {
			out = append(out, byte(rng.Uint32()))
		}
	}
	return append(out, data[pos:]...)
}
