package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/store"
)

// e2eState carries results between sections.
type e2eState struct {
	putNew float64 // MB/s of the new-data put into an empty repository
	write  float64 // MB/s of the durable-write limit
}

type putJSON struct {
	Files     int64 `json:"files"`
	Bytes     int64 `json:"bytes"`
	NewBytes  int64 `json:"new_bytes"`
	NewChunks int64 `json:"new_chunks"`
}

func (b *bench) put(ctx context.Context, repo string, args ...string) (putJSON, float64, int64, error) {
	el, rss, out, err := b.runLoft(ctx, repo, append([]string{"put", "--json"}, args...)...)
	var r putJSON
	if err == nil {
		err = json.Unmarshal(out, &r)
	}
	return r, mbps(r.Bytes, el), rss, err
}

func (b *bench) initRepo(ctx context.Context, name string, extra ...string) (string, error) {
	repo := filepath.Join(b.dir, name)
	_, _, _, err := b.runLoft(ctx, repo, append([]string{"init"}, extra...)...)
	return repo, err
}

// rounds is how many times a figure and its limit are measured, in turn;
// the medians are reported, which keeps a slow spell of a shared disk from
// deciding a ratio.
const rounds = 3

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func (b *bench) putNew(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("put:")
	var limit, put, reput []float64
	var reputNew int64
	for r := range rounds {
		w, err := writeLimit(ctx, filepath.Join(b.dir, "writelimit"), sz.big, store.DefaultParams().Avg)
		if err != nil {
			return err
		}
		limit = append(limit, w)
		repo, err := b.initRepo(ctx, fmt.Sprintf("repo-new-%d", r))
		if err != nil {
			return err
		}
		_, rate, _, err := b.put(ctx, repo, l.bigFile, "--as", "big.bin")
		if err != nil {
			return err
		}
		put = append(put, rate)
		// --force-read: the figure is the dedup path (read, chunk, hash,
		// look up), not the files cache, which skips an unchanged file.
		res, rate, _, err := b.put(ctx, repo, l.bigFile, "--as", "big.bin", "--force-read")
		if err != nil {
			return err
		}
		reput, reputNew = append(reput, rate), res.NewBytes
		if r < rounds-1 {
			os.RemoveAll(repo)
		} else if err := os.Rename(repo, filepath.Join(b.dir, "repo")); err != nil {
			return err
		}
		fmt.Printf("  round %d: durable write %.0f MB/s, put %.0f MB/s, re-put %.0f MB/s\n", r+1, w, put[r], reput[r])
	}
	lw, pn, rp := median(limit), median(put), median(reput)
	st.putNew, st.write = pn, lw
	ratio := pn / lw
	b.add(row{name: fmt.Sprintf("put %s new incompressible data", human(sz.big)), value: fmt.Sprintf("%.0f MB/s", pn),
		limit: fmt.Sprintf("%.0f MB/s durable write (CPU ceiling %.0f MB/s)", lw, l.cpu), target: ">= 85% of limit",
		verdict: verdict(ratio >= 0.85, fmt.Sprintf("%.0f%%", 100*ratio))})
	ratio = rp / l.pipeline
	b.add(row{name: fmt.Sprintf("put the same %s again", human(sz.big)), value: fmt.Sprintf("%.0f MB/s, %s new", rp, human(reputNew)),
		limit: fmt.Sprintf("%.0f MB/s chunk+hash", l.pipeline), target: ">= 70% of limit",
		verdict: verdict(ratio >= 0.70, fmt.Sprintf("%.0f%%", 100*ratio))})
	return nil
}

func (b *bench) putEdited(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("shifted edits:")
	const edits = 100
	edited := filepath.Join(b.dir, "big-edited.bin")
	if err := editedCopy(l.bigFile, edited, edits, 7); err != nil {
		return err
	}
	defer os.Remove(edited)
	repo, err := b.repoWithBig(ctx, l)
	if err != nil {
		return err
	}
	r, rate, _, err := b.put(ctx, repo, edited, "--as", "big-edited.bin")
	if err != nil {
		return err
	}
	avg := int64(store.DefaultParams().Avg)
	bound := int64(1.5 * float64(edits*avg))
	b.add(row{name: fmt.Sprintf("put a copy with %d small inserts", edits), value: fmt.Sprintf("%s new, %.0f MB/s", human(r.NewBytes), rate),
		limit: fmt.Sprintf("%d x %s avg chunk", edits, human(avg)), target: "<= " + human(bound),
		verdict: verdict(r.NewBytes <= bound, fmt.Sprintf("%.2f x edits x avg", float64(r.NewBytes)/float64(edits*avg)))})
	return nil
}

// repoWithBig returns the repository that holds the big file, making it
// when the put section did not run.
func (b *bench) repoWithBig(ctx context.Context, l *limits) (string, error) {
	repo := filepath.Join(b.dir, "repo")
	if _, err := os.Stat(repo); err == nil {
		return repo, nil
	}
	repo, err := b.initRepo(ctx, "repo")
	if err == nil {
		_, _, _, err = b.put(ctx, repo, l.bigFile, "--as", "big.bin")
	}
	return repo, err
}

func (b *bench) putSmall(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("small files:")
	dir := filepath.Join(b.dir, "small")
	total, err := writeSmallFiles(dir, sz.small, 11)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var limit, rates, fps []float64
	for r := range rounds {
		files, bytes, lel, err := writeSmallLimit(ctx, filepath.Join(b.dir, "smalllimit"), sz.small)
		if err != nil {
			return err
		}
		limit = append(limit, float64(files)/lel.Seconds())
		repo, err := b.initRepo(ctx, "repo-small")
		if err != nil {
			return err
		}
		el, _, out, err := b.runLoft(ctx, repo, "put", "--json", dir)
		os.RemoveAll(repo)
		if err != nil {
			return err
		}
		var res putJSON
		if err := json.Unmarshal(out, &res); err != nil {
			return err
		}
		rates = append(rates, mbps(total, el))
		fps = append(fps, float64(res.Files)/el.Seconds())
		fmt.Printf("  round %d: durable small writes %.0f files/s (%.0f MB/s), put %.0f files/s (%.0f MB/s)\n",
			r+1, limit[r], mbps(bytes, lel), fps[r], rates[r])
	}
	rate, lim := median(rates), median(limit)
	target := "no base"
	ok := true
	detail := "no new-data put in this run"
	if st.putNew > 0 {
		ok = rate >= st.putNew/2
		target = fmt.Sprintf(">= %.0f MB/s (half of new-data put)", st.putNew/2)
		detail = fmt.Sprintf("%.0f%% of new-data put, %.0f%% of small-write limit", 100*rate/st.putNew, 100*median(fps)/lim)
	}
	b.add(row{name: fmt.Sprintf("put %d small files of 1-64 KiB (%s)", sz.small, human(total)),
		value:  fmt.Sprintf("%.0f files/s, %.0f MB/s", median(fps), rate),
		limit:  fmt.Sprintf("%.0f MB/s new-data put; %.0f files/s durable small writes", st.putNew, lim),
		target: target, verdict: verdict(ok, detail)})
	return nil
}

func (b *bench) get(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("get:")
	repo, err := b.repoWithBig(ctx, l)
	if err != nil {
		return err
	}
	dst := filepath.Join(b.dir, "got.bin")
	el, _, _, err := b.runLoft(ctx, repo, "get", "big.bin", dst)
	if err != nil {
		return err
	}
	os.Remove(dst)
	rate := mbps(sz.big, el)
	b.add(row{name: fmt.Sprintf("get the %s file", human(sz.big)), value: fmt.Sprintf("%.0f MB/s", rate),
		limit: fmt.Sprintf("%.0f MB/s durable write, %.0f MB/s SHA-256", st.write, l.sha), target: "-", verdict: "-"})
	return nil
}

func (b *bench) rss(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("memory:")
	huge := filepath.Join(b.dir, "huge.bin")
	if err := writeRandomFile(huge, sz.huge, 5); err != nil {
		return err
	}
	defer os.Remove(huge)
	repo, err := b.initRepo(ctx, "repo-huge")
	if err != nil {
		return err
	}
	defer os.RemoveAll(repo)
	_, rate, rss, err := b.put(ctx, repo, huge, "--as", "huge.bin")
	if err != nil {
		return err
	}
	const limit = 64 << 20
	b.add(row{name: fmt.Sprintf("peak RSS of put of a %s file", human(sz.huge)), value: fmt.Sprintf("%.1f MiB (%.0f MB/s)", float64(rss)/(1<<20), rate),
		limit: "64 MiB", target: "< 64 MiB", verdict: verdict(rss < limit, fmt.Sprintf("%.0f%% of limit", 100*float64(rss)/limit))})
	os.Remove(huge)
	dst := filepath.Join(b.dir, "huge-got.bin")
	el, rss, _, err := b.runLoft(ctx, repo, "get", "huge.bin", dst)
	if err != nil {
		return err
	}
	os.Remove(dst)
	b.add(row{name: fmt.Sprintf("peak RSS of get of a %s file", human(sz.huge)), value: fmt.Sprintf("%.1f MiB (%.0f MB/s)", float64(rss)/(1<<20), mbps(sz.huge, el)),
		limit: "64 MiB", target: "< 64 MiB", verdict: verdict(rss < limit, fmt.Sprintf("%.0f%% of limit", 100*float64(rss)/limit))})
	return nil
}

// million seeds a repository with many chunks through the node's own API
// (chunk files and catalog rows, a thousand chunks per object), builds its
// chunk filter with one small put, then times a put of new data into it.
func (b *bench) million(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("large repository:")
	repo := filepath.Join(b.dir, "repo-million")
	defer os.RemoveAll(repo)
	start := time.Now()
	if err := seed(ctx, repo, sz.million); err != nil {
		return err
	}
	fmt.Printf("  seeded %d chunks in %v\n", sz.million, time.Since(start).Round(time.Second))
	tiny := filepath.Join(b.dir, "tiny")
	os.WriteFile(tiny, []byte("tiny"), 0o644)
	if _, _, _, err := b.put(ctx, repo, tiny); err != nil {
		return err
	}
	// New data each round, into the big repository and into an empty one.
	var empty, full []float64
	for r := range rounds {
		f := filepath.Join(b.dir, fmt.Sprintf("new-%d.bin", r))
		if err := writeRandomFile(f, sz.big, uint64(100+r)); err != nil {
			return err
		}
		e, err := b.initRepo(ctx, "repo-empty")
		if err != nil {
			return err
		}
		_, rate, _, err := b.put(ctx, e, f)
		os.RemoveAll(e)
		if err != nil {
			return err
		}
		empty = append(empty, rate)
		if _, rate, _, err = b.put(ctx, repo, f); err != nil {
			return err
		}
		full = append(full, rate)
		os.Remove(f)
		fmt.Printf("  round %d: empty repository %.0f MB/s, %d chunks %.0f MB/s\n", r+1, empty[r], sz.million, full[r])
	}
	base, rate := median(empty), median(full)
	slower := 1 - rate/base
	b.add(row{name: fmt.Sprintf("put %s into a repository of %d chunks", human(sz.big), sz.million), value: fmt.Sprintf("%.0f MB/s", rate),
		limit: fmt.Sprintf("%.0f MB/s into an empty one", base), target: "<= 20% slower",
		verdict: verdict(slower <= 0.20, fmt.Sprintf("%+.0f%%", -100*slower))})
	return nil
}

func seed(ctx context.Context, repo string, chunks int) error {
	n, err := node.Init(ctx, repo, node.InitOptions{}, node.Options{})
	if err != nil {
		return err
	}
	defer n.Close()
	const per = 1000
	data := make([]byte, 64)
	for obj := 0; obj*per < chunks; obj++ {
		batch := n.Store().NewBatch()
		refs := make([]catalog.ChunkRef, 0, per)
		for i := 0; i < per && obj*per+i < chunks; i++ {
			copy(data, fmt.Sprintf("seed chunk %12d", obj*per+i))
			id := store.Sum(data)
			stored, err := batch.Add(ctx, id, data)
			if err != nil {
				batch.Abort()
				return err
			}
			refs = append(refs, catalog.ChunkRef{ID: id, Plain: int64(len(data)), Stored: stored})
		}
		if err := batch.Commit(ctx); err != nil {
			return err
		}
		err := n.Catalog().Tx(ctx, func(tx *catalog.Tx) error {
			_, err := tx.AddVersion(ctx, catalog.NewVersion{Name: names.Must(fmt.Sprintf("seed/%06d", obj)),
				Size: int64(len(refs) * len(data)), Mode: 0o644, Chunks: refs})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// editedCopy copies src to dst with n inserts of 1-64 random bytes at
// random offsets: the "shifted edits" that content-defined chunking exists for.
func editedCopy(src, dst string, n int, seed uint64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = rng.Int64N(fi.Size())
	}
	slices.Sort(offs)
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	var pos int64
	for _, o := range offs {
		if _, err := io.CopyN(w, in, o-pos); err != nil {
			return err
		}
		pos = o
		ins := make([]byte, 1+rng.IntN(64))
		for i := range ins {
			ins[i] = byte(rng.Uint32())
		}
		w.Write(ins)
	}
	if _, err := io.Copy(w, in); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return out.Close()
}

// writeSmallFiles writes n files of 1-64 KiB of random bytes in 100
// directories and returns their total size.
func writeSmallFiles(dir string, n int, seed uint64) (int64, error) {
	rng := rand.New(rand.NewPCG(seed, seed))
	src := rand.NewChaCha8(seedOf(seed))
	buf := make([]byte, 64<<10)
	var total int64
	for i := 0; i < n; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i%100))
		if i < 100 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return 0, err
			}
		}
		size := 1024 + rng.IntN(63*1024+1)
		src.Read(buf[:size])
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), buf[:size], 0o644); err != nil {
			return 0, err
		}
		total += int64(size)
	}
	return total, nil
}

// watchPeakRSS samples the peak resident set (VmHWM) of a process until the
// returned function is called after the process ended. The kernel keeps
// the high-water mark, so sampling only misses growth in the last interval.
// (The rusage of a child is no use here: Go starts children with vfork,
// and the child's maxrss starts from the parent's.)
func watchPeakRSS(pid int) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v := vmHWM(pid); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}
