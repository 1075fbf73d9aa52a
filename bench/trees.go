package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// A real tree, backed up by loft, restic and borg in turn, in one run:
// the installed Go tree, then a changed copy of it (files deleted, edited
// and added), each put to the same path as a backup tool sees a directory
// it backs up every day. Medians of three interleaved rounds.

// treeTool is one backup program as the trees section drives it.
type treeTool struct {
	name    string
	init    func(repo string) *exec.Cmd
	put     func(repo, src string) *exec.Cmd
	restore func(repo, dest string) *exec.Cmd
}

func (b *bench) treeTools() []treeTool {
	loft := func(repo string, args ...string) *exec.Cmd {
		c := exec.Command(b.loft, append([]string{"--repo", repo, "--quiet"}, args...)...)
		c.Env = append(os.Environ(), "LOFT_LOG_LEVEL=warn")
		return c
	}
	restic := func(repo string, args ...string) *exec.Cmd {
		c := exec.Command("restic", append([]string{"-r", repo, "--quiet"}, args...)...)
		c.Env = append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_CACHE_DIR="+repo+".cache")
		return c
	}
	borg := func(args ...string) *exec.Cmd {
		c := exec.Command("borg", args...)
		c.Env = append(os.Environ(), "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes", "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes")
		return c
	}
	n := 0
	return []treeTool{
		{"loft",
			func(repo string) *exec.Cmd { return loft(repo, "init") },
			func(repo, src string) *exec.Cmd { return loft(repo, "put", "--mirror", src) },
			func(repo, dest string) *exec.Cmd { return loft(repo, "get", "src", dest) }},
		{"restic",
			func(repo string) *exec.Cmd { return restic(repo, "init") },
			func(repo, src string) *exec.Cmd {
				c := restic(repo, "backup", "src")
				c.Dir = filepath.Dir(src)
				return c
			},
			func(repo, dest string) *exec.Cmd { return restic(repo, "restore", "latest", "--target", dest) }},
		{"borg",
			func(repo string) *exec.Cmd { return borg("init", "--encryption", "none", repo) },
			func(repo, src string) *exec.Cmd {
				n++
				c := borg("create", fmt.Sprintf("%s::a%d", repo, n), "src")
				c.Dir = filepath.Dir(src)
				return c
			},
			func(repo, dest string) *exec.Cmd {
				c := borg("extract", fmt.Sprintf("%s::a%d", repo, n))
				c.Dir = dest
				return c
			}},
	}
}

// treeFigures are one tool's measurements in one round.
type treeFigures struct {
	first, changed, restore, again time.Duration
	du                             int64
	rss                            int64   // peak of every step
	stepRSS                        []int64 // the peak of each step, in order
	// loft's du in parts: what its chunks hold (compressed, the floor of
	// any store of them), its catalog, and its disk-full reserve.
	payload, catalog, reserve int64
}

func (b *bench) trees(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	root := runtime.GOROOT()
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		root = strings.TrimSpace(string(out))
	}
	dir, err := filepath.Abs(filepath.Join(b.dir, "trees"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t1, t2 := filepath.Join(dir, "t1"), filepath.Join(dir, "t2")
	if err := copyTree(root, t1); err != nil {
		return err
	}
	if err := copyTree(root, t2); err != nil {
		return err
	}
	files, bytes, err := changeTree(t2)
	if err != nil {
		return err
	}
	fmt.Printf("trees: %s (%d files, %.0f MB), then a changed copy\n", root, files, float64(bytes)/1e6)
	tools := b.treeTools()
	var missing []string
	for _, t := range tools[1:] {
		if _, err := exec.LookPath(t.name); err != nil {
			missing = append(missing, t.name)
		}
	}
	if len(missing) > 0 {
		fmt.Printf("  %s not installed (make bench-tools installs them from Debian's packages): loft alone\n", strings.Join(missing, ", "))
		tools = slices.DeleteFunc(tools, func(t treeTool) bool { return slices.Contains(missing, t.name) })
	}
	rounds := 3
	if b.quick {
		rounds = 1
	}
	figs := map[string][]treeFigures{}
	var copies, reads []float64 // the machine's own limits, each round
	for r := range rounds {
		// What the file system costs here, in the same run: copying the
		// tree (cp -a: every file created, written and timed, no hashing,
		// no catalog) bounds a restore; reading it all bounds a first put.
		out := filepath.Join(dir, fmt.Sprintf("copy-%d", r))
		settle()
		start := time.Now()
		if err := copyTree(t2, out); err != nil {
			return err
		}
		settle()
		copies = append(copies, time.Since(start).Seconds())
		dropCaches()
		start = time.Now()
		if _, err := runTimedShell("tar -cf - . | cat >/dev/null", t1); err != nil {
			return err
		}
		reads = append(reads, time.Since(start).Seconds())
		for i := range tools {
			t := tools[(i+r)%len(tools)] // interleaved: each goes first once
			f, err := b.treeRound(ctx, t, dir, t1, t2, r)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			fmt.Printf("  round %d %-6s first %6.2fs  changed %6.2fs  du %4.0f MB  restore %6.2fs  again (cold) %5.2fs  peak RSS %5.1f MiB\n",
				r+1, t.name, f.first.Seconds(), f.changed.Seconds(), float64(f.du)/1e6, f.restore.Seconds(), f.again.Seconds(), float64(f.rss)/(1<<20))
			if t.name == "loft" {
				var steps []string
				for i, rss := range f.stepRSS {
					steps = append(steps, fmt.Sprintf("%s %.1f", []string{"first", "changed", "restore", "again"}[i], float64(rss)/(1<<20)))
				}
				fmt.Printf("  round %d loft's peak RSS by step (MiB): %s\n", r+1, strings.Join(steps, ", "))
				fmt.Printf("  round %d loft's du: chunk payload %.1f MB, catalog %.1f MB, reserve %.1f MB, the rest %.1f MB\n", r+1,
					float64(f.payload)/1e6, float64(f.catalog)/1e6, float64(f.reserve)/1e6, float64(f.du-f.payload-f.catalog-f.reserve)/1e6)
			}
			figs[t.name] = append(figs[t.name], f)
		}
	}
	sort.Float64s(copies)
	sort.Float64s(reads)
	fmt.Printf("  limits: cp -a of the tree %.2fs, reading it cold (tar) %.2fs (medians)\n", copies[len(copies)/2], reads[len(reads)/2])
	med := func(tool string, pick func(treeFigures) float64) float64 {
		var v []float64
		for _, f := range figs[tool] {
			v = append(v, pick(f))
		}
		if len(v) == 0 {
			return 0
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	for _, fig := range []struct {
		name   string
		pick   func(treeFigures) float64
		unit   string
		target map[string]float64 // tool -> highest ratio
	}{
		{"tree: first put", func(f treeFigures) float64 { return f.first.Seconds() }, "s", map[string]float64{"restic": 0.8, "borg": 0.8}},
		{"tree: put of the changed tree", func(f treeFigures) float64 { return f.changed.Seconds() }, "s", map[string]float64{"restic": 0.8}},
		{"tree: repository size after both (du)", func(f treeFigures) float64 { return float64(f.du) / 1e6 }, "MB", map[string]float64{"restic": 1.0}},
		{"tree: restore of the newest tree", func(f treeFigures) float64 { return f.restore.Seconds() }, "s", map[string]float64{"restic": 0.6}},
		{"tree: unchanged tree again, cold cache", func(f treeFigures) float64 { return f.again.Seconds() }, "s", map[string]float64{"restic": 0.8}},
	} {
		mine := med("loft", fig.pick)
		var peers, targets []string
		switch fig.name {
		case "tree: restore of the newest tree":
			peers = append(peers, fmt.Sprintf("cp -a %.2fs", copies[len(copies)/2]))
		case "tree: first put":
			peers = append(peers, fmt.Sprintf("cold read %.2fs", reads[len(reads)/2]))
		case "tree: repository size after both (du)":
			peers = append(peers, fmt.Sprintf("loft's chunk payload %.1fMB, catalog %.1fMB, reserve %.1fMB",
				med("loft", func(f treeFigures) float64 { return float64(f.payload) / 1e6 }),
				med("loft", func(f treeFigures) float64 { return float64(f.catalog) / 1e6 }),
				med("loft", func(f treeFigures) float64 { return float64(f.reserve) / 1e6 })))
		}
		ok := true
		for _, t := range tools[1:] {
			theirs := med(t.name, fig.pick)
			ratio := mine / theirs
			// The ratio of each round too: the tools of a round run
			// minutes apart, the rounds further, and this machine's
			// speed drifts in between; the verdict is on the medians.
			var rounds []string
			for r := range min(len(figs["loft"]), len(figs[t.name])) {
				rounds = append(rounds, fmt.Sprintf("%.2f", fig.pick(figs["loft"][r])/fig.pick(figs[t.name][r])))
			}
			peers = append(peers, fmt.Sprintf("%s %.2f%s (%.2fx; rounds %s)", t.name, theirs, fig.unit, ratio, strings.Join(rounds, " ")))
			if want, has := fig.target[t.name]; has {
				targets = append(targets, fmt.Sprintf("<= %.1fx %s", want, t.name))
				ok = ok && ratio <= want
			}
		}
		v := "no peers"
		if len(targets) > 0 {
			v = verdict(ok, strings.Join(targets, ", "))
		}
		b.add(row{name: fig.name, value: fmt.Sprintf("%.2f%s", mine, fig.unit), limit: strings.Join(peers, ", "),
			target: strings.Join(targets, ", "), verdict: v})
	}
	// The target holds for every step of every round: the highest peak.
	var rss float64
	for _, f := range figs["loft"] {
		rss = max(rss, float64(f.rss)/(1<<20))
	}
	b.add(row{name: "tree: peak RSS of loft, any step, any round", value: fmt.Sprintf("%.1f MiB", rss), limit: "-",
		target: "< 64 MiB", verdict: verdict(rss < 64, "< 64 MiB")})
	return nil
}

// treeRound runs one tool through the steps in a fresh repository: the
// tree put, the changed tree put to the same path, the size, a restore of
// the newest, and the unchanged tree put again with a cold page cache.
func (b *bench) treeRound(ctx context.Context, t treeTool, dir, t1, t2 string, round int) (treeFigures, error) {
	var f treeFigures
	repo := filepath.Join(dir, fmt.Sprintf("repo-%s-%d", t.name, round))
	src := filepath.Join(dir, "src")
	defer os.RemoveAll(repo)
	defer os.RemoveAll(repo + ".cache")
	if _, _, err := runTimed(t.init(repo)); err != nil {
		return f, err
	}
	step := func(d *time.Duration, cmd *exec.Cmd) error {
		el, rss, err := runTimed(cmd)
		*d, f.rss = el, max(f.rss, rss)
		f.stepRSS = append(f.stepRSS, rss)
		return err
	}
	// The tree is moved into place, not copied: inodes and times stay, as
	// they do for a directory backed up every day. Each put starts with the
	// tree in the page cache, whichever tool ran before and whatever it
	// dropped: the cold case is the last step's, and the cold read of the
	// tree is printed as a limit.
	if err := os.Rename(t1, src); err != nil {
		return f, err
	}
	if err := warm(src); err != nil {
		return f, err
	}
	err := step(&f.first, t.put(repo, src))
	if rerr := os.Rename(src, t1); err == nil {
		err = rerr
	}
	if err != nil {
		return f, err
	}
	if err := os.Rename(t2, src); err != nil {
		return f, err
	}
	defer os.Rename(src, t2)
	if err := warm(src); err != nil {
		return f, err
	}
	if err := step(&f.changed, t.put(repo, src)); err != nil {
		return f, err
	}
	var err2 error
	if f.du, err2 = diskUsage(repo); err2 != nil {
		return f, err2
	}
	if t.name == "loft" {
		if err := b.loftParts(repo, &f); err != nil {
			return f, err
		}
	}
	// Every tree written stays until the section ends (with dir): ext4
	// without a journal, as on the development machine, passes over the
	// inodes freed in the last minute when it allocates one, reading each
	// one's inode table block, so a restore right after a 15,000-file tree
	// was deleted spent most of its time there (perf: recently_deleted,
	// under __ext4_new_inode) and took 3 to 17 s by the order of the steps.
	out := filepath.Join(dir, fmt.Sprintf("out-%s-%d", t.name, round))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return f, err
	}
	dest := out
	if t.name == "loft" {
		dest = filepath.Join(out, "src")
	}
	err = step(&f.restore, t.restore(repo, dest))
	if err != nil {
		return f, err
	}
	dropCaches()
	err = step(&f.again, t.put(repo, src))
	return f, err
}

// loftParts fills in the parts of loft's repository size.
func (b *bench) loftParts(repo string, f *treeFigures) error {
	out, err := exec.Command(b.loft, "--repo", repo, "status", "--json").Output()
	if err != nil {
		return fmt.Errorf("loft status: %w", err)
	}
	var st struct {
		Node struct {
			Stored int64 `json:"stored_bytes"`
		} `json:"node"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("loft status: %w", err)
	}
	f.payload = st.Node.Stored
	for _, name := range []string{"catalog.db", "catalog.db-wal", "catalog.db-shm", "reserve"} {
		n, err := diskUsage(filepath.Join(repo, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if name == "reserve" {
			f.reserve = n
		} else {
			f.catalog += n
		}
	}
	return nil
}

// warm reads every file of the tree at dir into the page cache.
func warm(dir string) error {
	_, err := runTimedShell("tar -cf - . | cat >/dev/null", dir)
	return err
}

// runTimedShell runs a shell command line in dir.
func runTimedShell(line, dir string) (time.Duration, error) {
	c := exec.Command("sh", "-c", line)
	c.Dir = dir
	el, _, err := runTimed(c)
	return el, err
}

// runTimed runs cmd after a settle and returns its wall time and peak RSS.
func runTimed(cmd *exec.Cmd) (time.Duration, int64, error) {
	settle()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	err := cmd.Wait()
	el := time.Since(start)
	rss := peak()
	if err != nil {
		return el, rss, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return el, rss, nil
}

// dropCaches empties the page cache (as root; otherwise the figure is a
// warm one, and says nothing of the disk).
func dropCaches() {
	settle()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200); err != nil {
		fmt.Printf("  (cannot drop caches: %v; the cold figure is warm)\n", err)
	}
}

// diskUsage sums the blocks of everything under dir, as du does.
func diskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n, err
}

// copyTree copies a tree with modes and times (cp -a).
func copyTree(from, to string) error {
	os.RemoveAll(to)
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s: %w\n%s", from, err, out)
	}
	return nil
}

// changeTree makes a release of the tree, the same way every run: one
// file in 25 deleted, one in 40 edited (a line added), 300 files added.
// It returns the files and bytes of the result.
func changeTree(dir string) (files, bytes int64, err error) {
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	sort.Strings(paths)
	for i, p := range paths {
		switch {
		case i%25 == 0:
			err = os.Remove(p)
		case i%40 == 1:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				_, err = f.WriteString("\n// changed in the next release\n")
				err = errors.Join(err, f.Close())
			}
		}
		if err != nil {
			return 0, 0, err
		}
	}
	rng := rand.New(rand.NewPCG(8, 8))
	added := filepath.Join(dir, "added")
	if err := os.MkdirAll(added, 0o755); err != nil {
		return 0, 0, err
	}
	for i := range 300 {
		b := make([]byte, 1+rng.IntN(64<<10))
		for j := range b {
			b[j] = "abcdefghij klmnop\n"[rng.IntN(18)]
		}
		if err := os.WriteFile(filepath.Join(added, fmt.Sprintf("f%03d.txt", i)), b, 0o644); err != nil {
			return 0, 0, err
		}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, ierr := d.Info()
			if ierr != nil {
				return ierr
			}
			files, bytes = files+1, bytes+fi.Size()
		}
		return err
	})
	return files, bytes, err
}
