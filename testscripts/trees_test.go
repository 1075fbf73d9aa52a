package testscripts

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// treeEntry is what exactTree compares of one path: its kind, mode bits
// (setuid, setgid and sticky included), modification time to the
// nanosecond, and its content or link target.
type treeEntry struct {
	kind    string
	mode    fs.FileMode
	mtime   int64
	content string
}

// scanTree describes every path below dir (dir itself as ".").
func scanTree(t *testing.T, dir string) map[string]treeEntry {
	t.Helper()
	out := map[string]treeEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := treeEntry{mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), mtime: fi.ModTime().UnixNano()}
		switch {
		case fi.IsDir():
			e.kind = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.kind, e.mode = "link", 0 // a link's own mode means nothing on Linux
			e.content, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			e.kind = "file"
			var b []byte
			b, err = os.ReadFile(p)
			e.content = string(b)
		default:
			e.kind = "other"
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exactTree fails unless got holds exactly what want does: the same paths,
// kinds, modes, nanosecond mtimes, contents and link targets.
func exactTree(t *testing.T, want, got string) {
	t.Helper()
	w, g := scanTree(t, want), scanTree(t, got)
	var diffs []string
	for p, we := range w {
		ge, ok := g[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing", p))
		case we != ge:
			diffs = append(diffs, fmt.Sprintf("%s: %s %v %s %q, want %s %v %s %q", p, ge.kind, ge.mode, time.Unix(0, ge.mtime).UTC().Format(time.RFC3339Nano),
				short(ge.content), we.kind, we.mode, time.Unix(0, we.mtime).UTC().Format(time.RFC3339Nano), short(we.content)))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: not in the tree", p))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("%s differs from %s:\n%s", got, want, strings.Join(diffs, "\n"))
	}
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// lchtimes sets a path's mtime without following a link.
func lchtimes(t *testing.T, p string, at time.Time) {
	t.Helper()
	ts := unix.NsecToTimespec(at.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// buildTree makes a tree at dir whose every entry has a distinct
// nanosecond mtime: files of several modes (setuid among them), nested and
// empty directories (one without write permission), and links relative,
// absolute, out of the tree and dangling. variant 1 is variant 0 after a
// release: a file edited, one deleted, a directory gone, a file turned
// into a link, a file added.
func buildTree(t *testing.T, dir string, variant int) {
	t.Helper()
	base := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	n := 0
	stamp := func() time.Time {
		n++
		return base.Add(time.Duration(n)*time.Hour + time.Duration(n*1111)*time.Nanosecond)
	}
	write := func(rel, content string, mode fs.FileMode) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	link := func(rel, target string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write("README", "read me\n", 0o644)
	write("bin/tool", strings.Repeat("binary ", 40000), 0o755|fs.ModeSetuid)
	write("src/main.go", "package main\n", 0o644)
	write("src/secret", "key\n", 0o600)
	if variant == 0 {
		write("src/old.go", "package old\n", 0o644)
		write("gone/deep/file", "deep\n", 0o644)
		write("src/becomes-link", "soon a link\n", 0o644)
	} else {
		write("src/main.go", "package main // edited\n", 0o644)
		write("src/new.go", "package new\n", 0o640)
		link("src/becomes-link", "main.go")
	}
	link("src/rel-link", "../README")
	link("abs-link", "/etc/hostname")
	link("out-link", "../../outside")
	link("dangling", "no/such/file")
	for _, d := range []string{"empty", "shared/tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "shared/tmp"), 0o1777)
	// Times last, deepest first, so that nothing written moves them.
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	sort.Sort(sort.Reverse(sort.StringSlice(paths)))
	for _, p := range paths {
		lchtimes(t, p, stamp())
	}
	if err := os.Chmod(filepath.Join(dir, "empty"), 0o555); err != nil { // read-only: restored last
		t.Fatal(err)
	}
}

type snapshotJSON struct {
	ID      string `json:"id"`
	Prefix  string `json:"prefix"`
	Files   int64  `json:"files"`
	Dirs    int64  `json:"dirs"`
	Links   int64  `json:"links"`
	Removed int64  `json:"removed"`
}

func snapshotsOf(t *testing.T, repo string) []snapshotJSON {
	t.Helper()
	var out []snapshotJSON
	if err := json.Unmarshal([]byte(must(t, repo, "snapshots", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type putJSON struct {
	Files     int64         `json:"files"`
	Unchanged int64         `json:"unchanged"`
	Read      int64         `json:"files_read"`
	Removed   int64         `json:"removed"`
	Snapshot  *snapshotJSON `json:"snapshot"`
}

func putMirror(t *testing.T, repo, dir string, args ...string) putJSON {
	t.Helper()
	var res putJSON
	out := must(t, repo, append([]string{"put", "--mirror", dir, "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return res
}

// TestMirrorPut puts two releases of a tree with --mirror and restores
// each exactly: the newest, and the first through --at, by snapshot ID
// and by time. A plain put of the same tree keeps its meaning (adds,
// never deletes).
func TestMirrorPut(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init")
	rel1, rel2 := filepath.Join(dir, "rel1"), filepath.Join(dir, "rel2")
	buildTree(t, rel1, 0)
	buildTree(t, rel2, 1)
	src := filepath.Join(dir, "tree")

	copyTree(t, rel1, src)
	first := putMirror(t, repo, src)
	if first.Snapshot == nil || first.Snapshot.Files != 7 || first.Snapshot.Dirs != 8 || first.Snapshot.Links != 4 {
		t.Fatalf("first snapshot %+v, want 7 files, 8 directories (the root too), 4 links", first.Snapshot)
	}
	out1 := filepath.Join(dir, "out1")
	must(t, repo, "get", "tree", out1)
	exactTree(t, rel1, out1)

	between := time.Now()
	time.Sleep(10 * time.Millisecond)
	os.RemoveAll(src)
	copyTree(t, rel2, src)
	second := putMirror(t, repo, src)
	// Gone: src/old.go, gone, gone/deep, gone/deep/file.
	if second.Removed != 4 || second.Snapshot == nil || second.Snapshot.Removed != 4 {
		t.Fatalf("second mirror put removed %d (snapshot %+v), want 4", second.Removed, second.Snapshot)
	}
	out2 := filepath.Join(dir, "out2")
	must(t, repo, "get", "tree", out2)
	exactTree(t, rel2, out2)

	for i, at := range []string{first.Snapshot.ID, first.Snapshot.ID[:5], between.Format(time.RFC3339Nano)} {
		out := filepath.Join(dir, fmt.Sprintf("at%d", i))
		must(t, repo, "get", "tree", out, "--at", at)
		exactTree(t, rel1, out)
	}
	// One object as a snapshot saw it, and ls at a snapshot.
	if got := must(t, repo, "get", "tree/src/main.go", "-", "--at", first.Snapshot.ID); got != "package main\n" {
		t.Errorf("main.go at the first snapshot: %q", got)
	}
	if got := must(t, repo, "ls", "tree/src", "--at", first.Snapshot.ID); !strings.Contains(got, "tree/src/old.go\n") {
		t.Errorf("ls at the first snapshot lacks old.go:\n%s", got)
	}
	if got := must(t, repo, "ls", "tree/src"); strings.Contains(got, "old.go") {
		t.Errorf("ls now still has old.go:\n%s", got)
	}
	if snaps := snapshotsOf(t, repo); len(snaps) != 2 || snaps[0].ID != first.Snapshot.ID || snaps[1].ID != second.Snapshot.ID {
		t.Fatalf("snapshots: %+v", snaps)
	}
	if got := must(t, repo, "snapshots"); !strings.Contains(got, first.Snapshot.ID) || !strings.Contains(got, second.Snapshot.ID) {
		t.Errorf("snapshots lists:\n%s", got)
	}

	// A plain put adds and never deletes: old.go comes back as an object,
	// new.go stays.
	os.RemoveAll(src)
	copyTree(t, rel1, src)
	must(t, repo, "put", src)
	if got := must(t, repo, "ls", "tree/src"); !strings.Contains(got, "old.go") || !strings.Contains(got, "new.go") {
		t.Errorf("after a plain put:\n%s", got)
	}
	checkPasses(t, repo)
}

// copyTree copies a tree made by buildTree, times and modes included.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	cmd := exec.Command("cp", "-a", from, to)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
}

// TestMirrorAtErrors: every --at that names nothing is a clear error with
// its exit code.
func TestMirrorAtErrors(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init")
	src := filepath.Join(dir, "tree")
	buildTree(t, src, 0)
	before := time.Now().Add(-time.Hour)
	res := putMirror(t, repo, src)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"get", "tree", filepath.Join(dir, "x"), "--at", before.Format(time.RFC3339)}, 3, "no such snapshot (the first is of "},
		{[]string{"get", "tree", filepath.Join(dir, "x"), "--at", "deadbeef"}, 3, `snapshot "deadbeef": no such snapshot`},
		{[]string{"get", "tree", filepath.Join(dir, "x"), "--at", "yesterday-ish"}, 2, "--at takes a snapshot ID or a time"},
		{[]string{"ls", "tree", "--at", "2026-13-45"}, 2, "--at takes a snapshot ID or a time"},
		{[]string{"get", "other", filepath.Join(dir, "x"), "--at", res.Snapshot.ID}, 2, `is of "tree", not of "other"`},
		{[]string{"get", "tree/README", filepath.Join(dir, "x"), "--at", res.Snapshot.ID, "--version", "1"}, 2, "--version and --at"},
		{[]string{"put", "--mirror", filepath.Join(src, "README")}, 2, "is not a directory"},
		{[]string{"put", "--mirror", src, src}, 2, "--mirror takes one directory"},
	} {
		_, errs, code := run(t, repo, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) || strings.Count(errs, "loft: ") != 1 {
			t.Errorf("loft %s: exit %d, %q; want exit %d and one line with %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a failed get made its destination")
	}
}

// TestFilesCache: an unchanged tree is not read again; a file changed
// behind an unchanged mtime (same size, new ctime) is; --force-read reads
// everything; another writer moving an object's head voids its entry.
func TestFilesCache(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init")
	src := filepath.Join(dir, "tree")
	for i := range 30 {
		randFile(t, filepath.Join(src, "d", fmt.Sprintf("f%02d", i)), 5000+i, uint64(i))
	}
	// A file changed less than 2 s before a put is not cached (it could
	// change again within its timestamp's tick): these are older.
	time.Sleep(2100 * time.Millisecond)
	if r := putMirror(t, repo, src); r.Read != 30 {
		t.Fatalf("first put read %d files, want 30", r.Read)
	}
	if r := putMirror(t, repo, src); r.Read != 0 || r.Unchanged != 32 || r.Files != 0 {
		t.Fatalf("unchanged tree: %+v, want nothing read and 32 unchanged (30 files, 2 directories)", r)
	}
	// Same size, same mtime, new content: only the ctime tells.
	p := filepath.Join(src, "d", "f07")
	fi, _ := os.Stat(p)
	randFile(t, p, int(fi.Size()), 777)
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	os.Chtimes(filepath.Join(src, "d"), time.Unix(5, 0), time.Unix(5, 0)) // the directory is not what this is about
	r := putMirror(t, repo, src)
	if r.Read != 1 {
		t.Fatalf("after a change behind the mtime: read %d files, want 1", r.Read)
	}
	got := must(t, repo, "get", "tree/d/f07", "-")
	want, _ := os.ReadFile(p)
	if got != string(want) {
		t.Fatal("the changed file was not stored")
	}
	if r := putMirror(t, repo, src, "--force-read"); r.Read != 30 {
		t.Fatalf("--force-read read %d files, want 30", r.Read)
	}
	// Another writer moves the head: the cache no longer vouches for it.
	other := filepath.Join(dir, "other")
	randFile(t, other, 100, 5)
	must(t, repo, "put", other, "--as", "tree/d/f01")
	// f01 is read (the head moved) and stored again. (f07 may be read too:
	// a file changed less than 2 s before a put is not cached, and whether
	// the puts since its change began that soon depends on the machine.)
	if r := putMirror(t, repo, src); r.Read < 1 || r.Read > 2 || r.Files != 1 {
		t.Fatalf("after another put of f01: %+v, want f01 read and stored again", r)
	}
	checkPasses(t, repo)
}

// TestKillMirrorPut kills a mirror put at random moments, 20 times. After
// each kill check passes, and the snapshot is either absent or complete (it
// restores to exactly the tree that was put); the rerun completes it.
func TestKillMirrorPut(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "tree")
	must(t, repo, "init", "--chunk-min", "4096", "--chunk-avg", "16384", "--chunk-max", "65536")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range 150 {
		randFile(t, filepath.Join(src, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%03d", i)), 1+rng.IntN(20<<10), uint64(i))
	}
	randFile(t, filepath.Join(src, "big"), 4<<20, 1)
	start := time.Now()
	putMirror(t, repo, src)
	full := time.Since(start)

	const kills = 20
	kw := newKillWindow(full, rng)
	for k := range kills {
		// Each round: files changed, one deleted, one added, a link.
		randFile(t, filepath.Join(src, "big"), 4<<20, uint64(100+k))
		for j := range 15 {
			i := rng.IntN(150)
			randFile(t, filepath.Join(src, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%03d", i)), 1+rng.IntN(20<<10), uint64(1000+k*100+j))
		}
		victim := filepath.Join(src, fmt.Sprintf("d%d", k%7), fmt.Sprintf("f%03d", rng.IntN(150)))
		os.Remove(victim)
		randFile(t, filepath.Join(src, "new", fmt.Sprintf("n%02d", k)), 3000, uint64(5000+k))
		os.Symlink(fmt.Sprintf("../d%d", k%7), filepath.Join(src, "new", fmt.Sprintf("l%02d", k)))
		before := len(snapshotsOf(t, repo))
		kw.kill(t, repo, "put", "--mirror", src)
		checkPasses(t, repo)
		snaps := snapshotsOf(t, repo)
		switch {
		case len(snaps) == before+1:
			got := filepath.Join(dir, fmt.Sprintf("snap%d", k))
			must(t, repo, "get", "tree", got, "--at", snaps[len(snaps)-1].ID)
			exactTree(t, src, got)
			os.RemoveAll(got)
		case len(snaps) != before:
			t.Fatalf("%d snapshots after one put, had %d", len(snaps), before)
		}
		putMirror(t, repo, src)
		got := filepath.Join(dir, fmt.Sprintf("out%d", k))
		must(t, repo, "get", "tree", got)
		exactTree(t, src, got)
		os.RemoveAll(got)
	}
	kw.enough(t, kills)
}

// TestRestoreLinksStayLinks: a stored link that points out of the
// destination is made as a link and never written through: not when the
// catalog (edited, as a peer's could be) puts a file below the link, and
// not when the destination already holds such a link.
func TestRestoreLinksStayLinks(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init")
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	src := filepath.Join(dir, "tree")
	os.MkdirAll(src, 0o755)
	os.Symlink(outside, filepath.Join(src, "escape"))
	os.Symlink(outside, filepath.Join(src, "fine"))
	os.WriteFile(filepath.Join(src, "planted"), []byte("must stay inside\n"), 0o644)
	putMirror(t, repo, src)
	renameObjects(t, repo, map[string]string{"tree/planted": "tree/escape/planted"})

	// Links are made after the files: the file's directory takes the
	// name, and the link is reported in the way.
	dest := filepath.Join(dir, "dest")
	_, errs, code := run(t, repo, "get", "tree", dest)
	if code == 0 || !strings.Contains(errs, "tree/escape") || !strings.Contains(errs, "in the way") {
		t.Errorf("get of a link with a file below it: exit %d, %q", code, errs)
	}
	if target, err := os.Readlink(filepath.Join(dest, "fine")); err != nil || target != outside {
		t.Errorf("the link was restored as %q, %v; want a link to %s", target, err, outside)
	}
	// A destination that already has the link: the file is refused.
	dest2 := filepath.Join(dir, "dest2")
	os.MkdirAll(dest2, 0o755)
	os.Symlink(outside, filepath.Join(dest2, "escape"))
	_, errs, code = run(t, repo, "get", "tree", dest2)
	if code == 0 || !strings.Contains(errs, "leads out of") {
		t.Errorf("get through a link out of the destination: exit %d, %q", code, errs)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("a restore wrote outside its destination: %v", ents)
	}
}

// TestForgetPurgeGCWithPuts runs forget, rm --purge and gc --grace 0s in a
// loop beside two writers that mirror overlapping trees, and a third that
// puts the same content under a prefix the purges drop. Afterwards every
// snapshot left restores byte-identical to the tree it was taken of, and
// the repository passes check --read-data.
func TestForgetPurgeGCWithPuts(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init", "--chunk-min", "4096", "--chunk-avg", "16384", "--chunk-max", "65536")
	shared := func(i int) int { return i % 12 } // content both trees hold
	const rounds = 6
	saved := sync.Map{} // snapshot ID -> copy of the tree it was taken of
	if err := os.MkdirAll(filepath.Join(dir, "saved"), 0o755); err != nil {
		t.Fatal(err)
	}
	writer := func(name string, seed uint64) func() error {
		return func() error {
			src := filepath.Join(dir, name)
			rng := rand.New(rand.NewPCG(seed, 3))
			for r := range rounds {
				for i := range 8 {
					randFile(t, filepath.Join(src, fmt.Sprintf("f%d", i)), 3000+rng.IntN(40000), uint64(shared(r*8+i)))
				}
				os.Remove(filepath.Join(src, fmt.Sprintf("f%d", rng.IntN(8))))
				out, errs, code := run(t, repo, "put", "--mirror", src, "--json")
				if code != 0 {
					return fmt.Errorf("put --mirror %s: exit %d: %s", name, code, errs)
				}
				var res putJSON
				if err := json.Unmarshal([]byte(out), &res); err != nil || res.Snapshot == nil {
					return fmt.Errorf("put --mirror %s: %v: %s", name, err, out)
				}
				keep := filepath.Join(dir, "saved", res.Snapshot.ID)
				if out, err := exec.Command("cp", "-a", src, keep).CombinedOutput(); err != nil {
					return fmt.Errorf("cp -a: %v: %s", err, out)
				}
				saved.Store(res.Snapshot.ID, keep)
			}
			return nil
		}
	}
	junk := func() error {
		for r := range rounds {
			p := filepath.Join(dir, "junk", fmt.Sprintf("j%d", r))
			randFile(t, p, 20000, uint64(shared(r)))
			if _, errs, code := run(t, repo, "put", p, "--as", fmt.Sprintf("junk/j%d", r)); code != 0 {
				return fmt.Errorf("put junk: exit %d: %s", code, errs)
			}
		}
		return nil
	}
	stop := make(chan struct{})
	janitorDone := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				janitorDone <- nil
				return
			default:
			}
			for _, args := range [][]string{
				{"forget", "--keep-last", "3"},
				{"rm", "--purge", "--yes", "-r", "junk"},
				{"gc", "--grace", "0s"},
			} {
				// rm finds nothing at times (exit 3): that is no failure.
				if _, errs, code := run(t, repo, args...); code != 0 && code != 3 && code != 5 {
					janitorDone <- fmt.Errorf("%s: exit %d: %s", strings.Join(args, " "), code, errs)
					return
				}
			}
		}
		janitorDone <- nil
	}()
	var g errgroup.Group
	g.Go(writer("alpha", 1))
	g.Go(writer("beta", 2))
	g.Go(junk)
	err := g.Wait()
	close(stop)
	if jerr := <-janitorDone; jerr != nil {
		t.Fatal(jerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	must(t, repo, "forget", "--keep-last", "3")
	must(t, repo, "gc", "--grace", "0s")
	snaps := snapshotsOf(t, repo)
	if len(snaps) != 6 {
		t.Errorf("%d snapshots left, want 3 of each tree", len(snaps))
	}
	for _, s := range snaps {
		want, ok := saved.Load(s.ID)
		if !ok {
			t.Fatalf("snapshot %s was never reported by a put", s.ID)
		}
		got := filepath.Join(dir, "check", s.ID)
		must(t, repo, "get", s.Prefix, got, "--at", s.ID)
		exactTree(t, want.(string), got)
	}
	must(t, repo, "check", "--read-data")
}

// TestForgetAndPurgeCommands: the commands' refusals, --dry-run and
// --json, and gc giving the space back.
func TestForgetAndPurgeCommands(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init")
	src := filepath.Join(dir, "tree")
	for r := range 3 {
		randFile(t, filepath.Join(src, "f"), 200000, uint64(r))
		putMirror(t, repo, src)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"forget"}, 2, "at least one --keep rule"},
		{[]string{"forget", "--keep-last", "-1"}, 2, "positive"},
		{[]string{"rm", "--purge", "tree"}, 2, "give --yes when not on a terminal"},
		{[]string{"rm", "--purge", "--yes", "tree"}, 2, "use -r"},
		{[]string{"rm", "--purge", "--yes", "nothing"}, 3, "nothing: not found"},
	} {
		_, errs, code := run(t, repo, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("loft %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.msg)
		}
	}
	var res struct {
		Snapshots []struct {
			ID   string   `json:"id"`
			Keep bool     `json:"keep"`
			Why  []string `json:"why"`
		} `json:"snapshots"`
		Dropped int64 `json:"versions_dropped"`
	}
	out := must(t, repo, "forget", "tree", "--keep-last", "1", "--dry-run", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Snapshots) != 3 || res.Dropped != 2 {
		t.Fatalf("dry run: %s", out)
	}
	if n := len(snapshotsOf(t, repo)); n != 3 {
		t.Fatalf("a dry run left %d snapshots, want 3", n)
	}
	must(t, repo, "forget", "tree", "--keep-last", "1")
	if n := len(snapshotsOf(t, repo)); n != 1 {
		t.Fatalf("forget --keep-last 1 left %d snapshots", n)
	}
	if out := must(t, repo, "versions", "tree/f"); strings.Count(out, "\n") != 2 { // header and one version
		t.Errorf("versions after forget:\n%s", out)
	}
	var gc struct {
		Chunks int64 `json:"chunks"`
	}
	if err := json.Unmarshal([]byte(must(t, repo, "gc", "--grace", "0s", "--json")), &gc); err != nil || gc.Chunks == 0 {
		t.Errorf("gc after forget removed %d chunks (%v), want the dropped versions' data", gc.Chunks, err)
	}
	must(t, repo, "rm", "--purge", "--yes", "-r", "tree")
	if out := must(t, repo, "ls", "-a", "-r"); out != "" {
		t.Errorf("after a purge ls -a lists:\n%s", out)
	}
	must(t, repo, "gc", "--grace", "0s")
	var st struct {
		Chunks int64 `json:"chunks"`
	}
	if err := json.Unmarshal([]byte(must(t, repo, "stat", "--json")), &st); err != nil || st.Chunks != 0 {
		t.Errorf("after purge and gc: %d chunks (%v), want none", st.Chunks, err)
	}
	checkPasses(t, repo)
}

// TestMirrorFailureNoSnapshot: a mirror put that cannot store one input
// (here a name that is not UTF-8) stores the rest, exits 5, and records no
// snapshot: a snapshot is of a complete tree, or none.
func TestMirrorFailureNoSnapshot(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init")
	src := filepath.Join(dir, "tree")
	randFile(t, filepath.Join(src, "good"), 1000, 1)
	randFile(t, filepath.Join(src, "bad\xff"), 1000, 2)
	_, errs, code := run(t, repo, "put", "--mirror", src)
	if code != 5 || !strings.Contains(errs, "no snapshot recorded") {
		t.Fatalf("mirror put with a bad name: exit %d, %q; want 5 and no snapshot", code, errs)
	}
	if n := len(snapshotsOf(t, repo)); n != 0 {
		t.Fatalf("%d snapshots after a put that failed an input", n)
	}
	if got := must(t, repo, "ls", "tree"); !strings.Contains(got, "tree/good") {
		t.Errorf("the good file was not stored: %q", got)
	}
}
