package testscripts

// Fault tests with real processes of loft: SIGKILL in the middle of puts,
// writers and a collector at once, and a disk that is really full. The
// "loft" command is the one testscript.Main puts on PATH.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// run runs loft with args on repo and returns stdout, stderr and the exit code.
func run(t *testing.T, repo string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "loft", append([]string{"--repo", repo}, args...)...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("loft %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// must runs loft and fails the test unless it exits 0.
func must(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out, errs, code := run(t, repo, args...)
	if code != 0 {
		t.Fatalf("loft %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func childEnv() []string {
	// Race-instrumented children would sleep a second at exit otherwise.
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0", "LOFT_LOG_LEVEL=error")
}

func randFile(t *testing.T, path string, size int, seed uint64) {
	t.Helper()
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 9}).Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type checkReport struct {
	Findings []struct {
		Kind    string `json:"kind"`
		Problem bool   `json:"problem"`
	} `json:"findings"`
}

// checkPasses runs check and returns how many orphans it reported.
func checkPasses(t *testing.T, repo string) int {
	t.Helper()
	out := must(t, repo, "check", "--json")
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	orphans := 0
	for _, f := range rep.Findings {
		if f.Problem {
			t.Fatalf("check found a problem: %s", out)
		}
		if f.Kind == "orphan" {
			orphans++
		}
	}
	return orphans
}

// sameTree fails unless every file under want has an identical copy under got.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(a, b) {
			return fmt.Errorf("%s differs after restore (%v)", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKillPut kills a real `loft put` at random moments, 24 times. After
// each kill the repository passes check, the same put run again succeeds
// and everything reads back identical; at the end gc with no grace leaves
// no orphan or staged file behind.
func TestKillPut(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	// Small chunks: many chunk files and several commits per put.
	must(t, repo, "init", "--chunk-min", "4096", "--chunk-avg", "16384", "--chunk-max", "65536")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 120 {
		randFile(t, filepath.Join(src, "small", fmt.Sprintf("f%03d", i)), 1+rng.IntN(24<<10), uint64(i))
	}
	randFile(t, filepath.Join(src, "big"), 6<<20, 1000)

	// How long an uninterrupted put of fresh data takes here, so the kills
	// land all over it.
	start := time.Now()
	must(t, repo, "put", src)
	full := time.Since(start)

	const kills = 24
	kw := newKillWindow(full, rng)
	for k := range kills {
		// New content in some files each round, so every put has work.
		randFile(t, filepath.Join(src, "big"), 6<<20, uint64(2000+k))
		for j := range 20 {
			randFile(t, filepath.Join(src, "small", fmt.Sprintf("f%03d", rng.IntN(120))), 1+rng.IntN(24<<10), uint64(10000+k*100+j))
		}
		kw.kill(t, repo, "put", src)

		checkPasses(t, repo)
		must(t, repo, "put", src)
		out := filepath.Join(dir, fmt.Sprintf("out%d", k))
		must(t, repo, "get", "src", out)
		sameTree(t, src, out)
		os.RemoveAll(out)
	}

	kw.enough(t, kills)

	// One more killed put of data that is never put again leaves garbage:
	// staged files, or orphans if the kill fell between renaming the chunks
	// into place and the catalog commit. gc with no grace takes all of it.
	randFile(t, filepath.Join(dir, "once"), 6<<20, 99)
	cmd := exec.Command("loft", "--repo", repo, "put", filepath.Join(dir, "once"))
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(full / 2)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	checkPasses(t, repo)
	must(t, repo, "gc", "--grace", "0")
	if n := checkPasses(t, repo); n != 0 {
		t.Fatalf("%d orphans left after gc --grace 0", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(repo, "chunks", "tmp")); len(ents) != 0 {
		t.Fatalf("%d staged files left after gc --grace 0", len(ents))
	}
	must(t, repo, "check", "--read-data")
}

// killWindow kills commands at random moments, uniform in a window that
// adapts: it shrinks after a kill that came too late (the command had
// ended) and grows after one that hit, so that most kills land inside a
// command whatever the machine's speed.
type killWindow struct {
	full, window time.Duration // an uninterrupted run; the current window
	rng          *rand.Rand
	interrupted  int
}

func newKillWindow(full time.Duration, rng *rand.Rand) *killWindow {
	return &killWindow{full: full, window: full, rng: rng}
}

// kill runs loft with args on repo, kills it with SIGKILL at a random
// moment, and reports whether the kill interrupted it. A run that ended
// first must have succeeded.
func (k *killWindow) kill(t *testing.T, repo string, args ...string) bool {
	t.Helper()
	cmd := exec.Command("loft", append([]string{"--repo", repo}, args...)...)
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(k.rng.Int64N(int64(k.window) + 1)))
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	if err != nil && strings.Contains(err.Error(), "killed") {
		k.interrupted++
		k.window = min(k.window+k.window/10, 2*k.full)
		return true
	}
	if err != nil {
		t.Fatalf("loft %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	k.window = k.window * 6 / 10
	return false
}

// enough fails the test unless at least half of kills interrupted a run.
func (k *killWindow) enough(t *testing.T, kills int) {
	t.Helper()
	t.Logf("%d of %d kills interrupted a running command (an uninterrupted one took %v)", k.interrupted, kills, k.full)
	if k.interrupted < kills/2 {
		t.Fatalf("only %d of %d kills interrupted a run", k.interrupted, kills)
	}
}

// TestWritersAndCollector runs two writer processes, each putting
// overlapping content in a loop and deleting some of it, beside a process
// running gc with no grace period in a loop. Every version committed reads
// back byte-identical afterwards.
func TestWritersAndCollector(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init", "--chunk-min", "1024", "--chunk-avg", "4096", "--chunk-max", "16384")
	must(t, repo, "config", "set", "keep-versions", "2")
	// Content is built from shared blocks, so writers reuse each other's
	// chunks, and chunks that gc is about to take.
	blocks := make([][]byte, 10)
	for i := range blocks {
		blocks[i] = make([]byte, 16<<10)
		rand.NewChaCha8([32]byte{byte(i), 3}).Read(blocks[i])
	}
	var mu sync.Mutex
	written := map[[32]byte]bool{}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			wdir := filepath.Join(dir, fmt.Sprintf("w%d", w))
			os.MkdirAll(wdir, 0o755)
			for r := range 10 {
				var data []byte
				for range 3 + rng.IntN(6) {
					data = append(data, blocks[rng.IntN(len(blocks))]...)
				}
				name := []string{"shared", fmt.Sprintf("own%d", w)}[r%2]
				p := filepath.Join(wdir, name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					errc <- err
					return
				}
				if _, errs, code := run(t, repo, "put", p); code != 0 {
					errc <- fmt.Errorf("writer %d put: exit %d: %s", w, code, errs)
					return
				}
				mu.Lock()
				written[sha256.Sum256(data)] = true
				mu.Unlock()
				if r%3 == 2 {
					if _, errs, code := run(t, repo, "rm", name); code != 0 && code != 3 {
						errc <- fmt.Errorf("writer %d rm: exit %d: %s", w, code, errs)
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
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, errs, code := run(t, repo, "gc", "--grace", "0"); code != 0 {
				errc <- fmt.Errorf("gc: exit %d: %s", code, errs)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-gcDone
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	checked := 0
	for _, name := range []string{"shared", "own0", "own1"} {
		out := must(t, repo, "versions", "--json", name)
		var vs []struct {
			Version int64  `json:"version"`
			Deleted bool   `json:"deleted"`
			SHA256  string `json:"sha256"`
		}
		if err := json.Unmarshal([]byte(out), &vs); err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.Deleted {
				continue
			}
			data := must(t, repo, "get", name, "--version", fmt.Sprint(v.Version), "-")
			sum := sha256.Sum256([]byte(data))
			if fmt.Sprintf("%x", sum) != v.SHA256 || !written[sum] {
				t.Fatalf("%s version %d does not read back as written", name, v.Version)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Fatalf("only %d versions to check", checked)
	}
	must(t, repo, "check", "--read-data")
}

// TestFullDisk fills a real, small file system (a tmpfs mounted in a
// private mount namespace) with a put: loft exits 7 with one line naming
// the problem, the repository passes check, and after space is freed the
// same put succeeds. It needs the privilege to mount, which CI has as root;
// elsewhere it is skipped (the store's tests inject ENOSPC in any case).
func TestFullDisk(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	probe := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs -o size=1m tmpfs \"$1\"", "sh", t.TempDir())
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs in a mount namespace here: %v %s", err, out)
	}
	dir := t.TempDir()
	loft, err := exec.LookPath("loft")
	if err != nil {
		t.Fatal(err)
	}
	randFile(t, filepath.Join(dir, "src", "a"), 3<<20, 1)
	randFile(t, filepath.Join(dir, "src", "b"), 6<<20, 2)
	randFile(t, filepath.Join(dir, "small"), 100<<10, 3)
	// All steps run inside one namespace, where the mount exists. Each
	// step prints its exit code on a line of its own.
	script := `
set -u
mnt="$1"; src="$2"; small="$3"; loft="$4"
mount -t tmpfs -o size=8m tmpfs "$mnt" || exit 99
step() { name="$1"; shift; "$loft" --repo "$mnt/repo" "$@" >"$mnt.$name.out" 2>"$mnt.$name.err"; echo "$name $?"; }
step init init --chunk-min 4096 --chunk-avg 16384 --chunk-max 65536
step small put "$small"
step full put "$src"
step check check --read-data
step ls ls
step rm rm small
step prune config set keep-versions 1
step gc gc --grace 0
step retry put "$src/a"
step check2 check --read-data
cat "$mnt.full.err"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
		filepath.Join(dir, "mnt"), filepath.Join(dir, "src"), filepath.Join(dir, "small"), loft)
	os.MkdirAll(filepath.Join(dir, "mnt"), 0o755)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	codes := map[string]string{}
	var fullErr []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "loft:") {
			codes[f[0]] = f[1]
		} else {
			fullErr = append(fullErr, line)
		}
	}
	want := map[string]string{"init": "0", "small": "0", "full": "7", "check": "0", "ls": "0",
		"rm": "0", "prune": "0", "gc": "0", "retry": "0", "check2": "0"}
	for step, code := range want {
		if codes[step] != code {
			t.Errorf("step %s exited %q, want %s\n%s", step, codes[step], code, out)
		}
	}
	if len(fullErr) != 1 || !strings.HasPrefix(fullErr[0], "loft: ") || !strings.Contains(fullErr[0], "no space left on device") {
		t.Errorf("the full-disk error is not one line naming the cause: %q", fullErr)
	}
}

// TestFullDiskCompletely fills a real small file system to the last byte
// (a 16 MiB tmpfs in a private mount namespace) under a repository that
// holds two objects. The reading commands work; a put fails with exit 7
// and one line saying how full the disk is and what was left to store; the
// repository passes check; rm and gc give space back (the repository's
// reserve makes the room they need); the put then succeeds.
func TestFullDiskCompletely(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	probe := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs -o size=1m tmpfs \"$1\"", "sh", t.TempDir())
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs in a mount namespace here: %v %s", err, out)
	}
	dir := t.TempDir()
	loft, err := exec.LookPath("loft")
	if err != nil {
		t.Fatal(err)
	}
	randFile(t, filepath.Join(dir, "a"), 3<<20, 1)
	randFile(t, filepath.Join(dir, "b"), 3<<20, 2)
	randFile(t, filepath.Join(dir, "c"), 2<<20, 3)
	os.MkdirAll(filepath.Join(dir, "out"), 0o755)
	// Every step runs inside one namespace and prints its name, its exit
	// code and the free space after it; its stderr goes to a file.
	script := `
set -u
mnt="$1"; d="$2"; loft="$3"
mount -t tmpfs -o size=16m tmpfs "$mnt" || exit 99
free() { df -B1 --output=avail "$mnt" | tail -1 | tr -d ' '; }
step() { name="$1"; shift; "$loft" --repo "$mnt/repo" "$@" >"$d/$name.out" 2>"$d/$name.err"; echo "$name $? $(free)"; }
step init init
step keep config set keep-versions 1
step puta put "$d/a"
step putb put "$d/b"
test -s "$mnt/repo/reserve" && echo "reserve yes 0"
dd if=/dev/zero of="$mnt/filler" bs=4k >/dev/null 2>&1
echo "filled 0 $(free)"
step ls ls -l
step stat stat
step versions versions a
step check check --read-data
step get get a "$d/out/a"
step status status
step putc put "$d/c"
step check2 check --read-data
step rm rm a
step gc gc --grace 0s
step putc2 put "$d/c"
step check3 check --read-data
test -s "$mnt/repo/reserve" && echo "reserve2 yes 0"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
		filepath.Join(dir, "mnt"), dir, loft)
	os.MkdirAll(filepath.Join(dir, "mnt"), 0o755)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	codes, free := map[string]string{}, map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			codes[f[0]] = f[1]
			fmt.Sscan(f[2], new(int64))
			var n int64
			fmt.Sscan(f[2], &n)
			free[f[0]] = n
		}
	}
	stderr := func(step string) string {
		b, _ := os.ReadFile(filepath.Join(dir, step+".err"))
		return string(b)
	}
	want := map[string]string{"init": "0", "keep": "0", "puta": "0", "putb": "0", "reserve": "yes", "ls": "0", "stat": "0",
		"versions": "0", "check": "0", "get": "0", "status": "0", "putc": "7", "check2": "0", "rm": "0", "gc": "0",
		"putc2": "0", "check3": "0", "reserve2": "yes"}
	for step, code := range want {
		if codes[step] != code {
			t.Errorf("step %s: %q, want %s\nstderr: %s\n%s", step, codes[step], code, stderr(step), out)
		}
	}
	if free["filled"] != 0 {
		t.Fatalf("the file system was not full: %d bytes free\n%s", free["filled"], out)
	}
	sameFile(t, filepath.Join(dir, "a"), filepath.Join(dir, "out", "a"))
	e := stderr("putc")
	if strings.Count(e, "\n") != 1 || !strings.HasPrefix(e, "loft: put: the disk holding") || !strings.Contains(e, " free; 2.0 MiB of input left to store)") {
		t.Errorf("the full-disk error of put is not one line saying how full and how much: %q", e)
	}
	if free["gc"] < 3<<20 {
		t.Errorf("rm and gc freed %d bytes, want the 3 MiB of a", free["gc"])
	}
}

// TestUnreadableFile puts a tree holding a file its user cannot read: the
// other files are stored, the unreadable one is reported with exit code 5,
// and the repository passes check. Root reads every file, so when the tests
// run as root the put runs as the user nobody (uid 65534), on a repository
// and a tree that user owns.
func TestUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	randFile(t, filepath.Join(src, "ok.bin"), 10<<10, 1)
	randFile(t, filepath.Join(src, "secret.bin"), 10<<10, 2)
	if err := os.Chmod(filepath.Join(src, "secret.bin"), 0o000); err != nil {
		t.Fatal(err)
	}
	loft, err := exec.LookPath("loft")
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		const nobody = 65534
		cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		// nobody must reach the binary, the tree and the repository.
		// (t.TempDir's parent and testscript's bin directory are private.)
		for _, p := range []string{filepath.Dir(dir), dir, loft, filepath.Dir(loft), filepath.Dir(filepath.Dir(loft))} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil {
				os.Lchown(p, nobody, nobody)
			}
			return nil
		})
	}
	runAs := func(args ...string) (string, int) {
		cmd := exec.Command(loft, append([]string{"--repo", repo}, args...)...)
		cmd.Env = childEnv()
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("loft %v: %v", args, err)
		}
		return string(out), 0
	}
	if out, code := runAs("init"); code != 0 {
		t.Fatalf("init as an unprivileged user: %d %s", code, out)
	}
	out, code := runAs("put", src)
	if code != 5 || !strings.Contains(out, "secret.bin") || !strings.Contains(out, "permission denied") {
		t.Fatalf("put with an unreadable file: exit %d\n%s", code, out)
	}
	if out, code := runAs("ls", "-r"); code != 0 || strings.TrimSpace(out) != "src/ok.bin" {
		t.Fatalf("stored: exit %d %q", code, out)
	}
	if out, code := runAs("check", "--read-data"); code != 0 {
		t.Fatalf("check after the partial put: exit %d\n%s", code, out)
	}
}

// TestConcurrentFirstPuts: several first puts at once, with no default
// repository yet: one creates it, the others use it, all succeed.
func TestConcurrentFirstPuts(t *testing.T) {
	for round := range 5 {
		dir := t.TempDir()
		env := append(childEnv(), "HOME="+filepath.Join(dir, "home"), "XDG_DATA_HOME=")
		const n = 4
		var wg sync.WaitGroup
		outs := make([]string, n)
		codes := make([]int, n)
		for i := range n {
			p := filepath.Join(dir, fmt.Sprintf("f%d", i))
			randFile(t, p, 50<<10, uint64(round*10+i))
			wg.Go(func() {
				cmd := exec.Command("loft", "put", p)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				outs[i] = string(out)
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					codes[i] = ee.ExitCode()
				}
			})
		}
		wg.Wait()
		for i := range n {
			if codes[i] != 0 {
				t.Fatalf("round %d: put %d exited %d: %s", round, i, codes[i], outs[i])
			}
		}
		cmd := exec.Command("loft", "ls")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil || strings.Count(string(out), "\n") != n {
			t.Fatalf("round %d: ls after concurrent first puts: %v %q", round, err, out)
		}
	}
}

// TestKillInit kills `loft init` at random moments: afterwards init (or
// the first put) always completes, keeping the node key once written.
func TestKillInit(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	start := time.Now()
	must(t, filepath.Join(t.TempDir(), "probe"), "init")
	full := time.Since(start)
	for i := range 30 {
		repo := filepath.Join(t.TempDir(), "repo")
		cmd := exec.Command("loft", "--repo", repo, "init")
		cmd.Env = childEnv()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(full) + 1)))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		key, _ := os.ReadFile(filepath.Join(repo, "node.key"))
		out, errs, code := run(t, repo, "init")
		if code != 0 && code != ExitRepositoryExists(errs) {
			t.Fatalf("kill %d: init after a killed init: exit %d %s%s", i, code, out, errs)
		}
		must(t, repo, "ls")
		if after, _ := os.ReadFile(filepath.Join(repo, "node.key")); len(key) > 0 && !bytes.Equal(key, after) {
			t.Fatalf("kill %d: the node key changed", i)
		}
	}
}

// ExitRepositoryExists returns 6 when stderr says a repository exists (the
// killed init had finished), else -1.
func ExitRepositoryExists(stderr string) int {
	if strings.Contains(stderr, "already exists") {
		return 6
	}
	return -1
}

// TestInterruptBlockedStdin: SIGINT stops a put whose standard input is a
// pipe with an idle writer (the read blocks), with exit code 130.
func TestInterruptBlockedStdin(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	must(t, repo, "init")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close() // held open and silent: loft's read blocks
	cmd := exec.Command("loft", "--repo", repo, "put", "-", "--as", "x")
	cmd.Env = childEnv()
	cmd.Stdin = r
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// Wait until the put has registered its session: then it is reading.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ents, _ := os.ReadDir(filepath.Join(repo, "locks")); len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the put never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 || errb.String() != "loft: interrupted\n" {
			t.Fatalf("interrupted put: %v, stderr %q", err, errb.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("put of a blocked standard input ignored SIGINT")
	}
	checkPasses(t, repo)
}

// TestServeFullDiskPauses: a serving node B whose repository is on a small
// file system (a 24 MiB tmpfs in B's own mount namespace) receives the
// replicas of a 40 MiB file from A. When its disk fills, B says in its
// status that receiving is paused, A's status counts the chunks still
// below two copies, and nothing breaks; when the file system grows, B
// receives again by itself and every chunk gets its second copy.
func TestServeFullDiskPauses(t *testing.T) {
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	probe := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs -o size=1m tmpfs \"$1\"", "sh", t.TempDir())
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs in a mount namespace here: %v %s", err, out)
	}
	dir := t.TempDir()
	loft, err := exec.LookPath("loft")
	if err != nil {
		t.Fatal(err)
	}
	ra := newRepo(t, filepath.Join(dir, "a"))
	a := serve(t, ra)

	// B lives in its own mount namespace: the script mounts the tmpfs,
	// makes the repository and becomes `loft serve` (exec keeps the PID).
	mnt := filepath.Join(dir, "bmnt")
	os.MkdirAll(mnt, 0o755)
	rb := filepath.Join(mnt, "b")
	script := `
set -e
mount -t tmpfs -o size=24m tmpfs "$1"
"$2" --repo "$3" init >/dev/null
for kv in heartbeat-interval=200ms replicate-interval=300ms peer-grace=3s gc-grace=0s; do
	"$2" --repo "$3" config set "${kv%%=*}" "${kv#*=}"
done
exec "$2" --repo "$3" serve --listen 127.0.0.1:0
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", mnt, loft, rb)
	cmd.Env = childEnv()
	logf, err := os.Create(filepath.Join(dir, "b.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	var bAddr string
	select {
	case l := <-line:
		f := strings.Fields(l) // "serving ID on ADDR"
		if len(f) != 4 {
			b, _ := os.ReadFile(filepath.Join(dir, "b.log"))
			t.Fatalf("B's serve printed %q\n%s", l, b)
		}
		bAddr = f[3]
	case <-time.After(time.Minute):
		t.Fatal("B's serve did not start")
	}
	// Commands on B run in B's namespace.
	inB := func(args ...string) (string, string, int) {
		c := exec.Command("nsenter", append([]string{"-t", fmt.Sprint(cmd.Process.Pid), "-m", loft, "--repo", rb}, args...)...)
		c.Env = childEnv()
		var o, e bytes.Buffer
		c.Stdout, c.Stderr = &o, &e
		err := c.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	tok := strings.TrimSpace(must(t, ra, "invite", "--addr", a.addr))
	if out, errs, code := inB("join", tok, "--addr", bAddr); code != 0 {
		t.Fatalf("join: %d %s%s", code, out, errs)
	}

	src := filepath.Join(dir, "big")
	randFile(t, src, 40<<20, 9)
	must(t, ra, "put", src)
	type bStatus struct {
		Node struct {
			ReceivingPaused string `json:"receiving_paused"`
		} `json:"node"`
	}
	waitFor(t, 2*time.Minute, "B to pause receiving on its full disk", func() (bool, string) {
		out, errs, code := inB("status", "--json")
		var st bStatus
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return false, fmt.Sprintf("exit %d %s%s", code, out, errs)
		}
		return st.Node.ReceivingPaused != "", out
	})
	if st := status(t, ra); st.Replication.Below == 0 {
		t.Errorf("A counts no chunk below two copies while B is full: %+v", st)
	}
	out, _, code := inB("status")
	if code != 0 || !strings.Contains(out, "disk full: receiving chunks from peers is paused") {
		t.Errorf("B's status does not say receiving is paused (exit %d):\n%s", code, out)
	}
	// Room again: the file system grows. B receives by itself.
	grow := exec.Command("nsenter", "-t", fmt.Sprint(cmd.Process.Pid), "-m", "mount", "-o", "remount,size=96m", mnt)
	if out, err := grow.CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	waitFor(t, 2*time.Minute, "every chunk to have two copies", func() (bool, string) {
		st := status(t, ra)
		return st.Replication.Chunks > 0 && st.Replication.Below == 0, fmt.Sprintf("%+v", st)
	})
	out, errs, code := inB("status", "--json")
	var st bStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Node.ReceivingPaused != "" {
		t.Errorf("B still says receiving is paused (exit %d):\n%s%s", code, out, errs)
	}
	if out, errs, code := inB("check", "--read-data"); code != 0 {
		t.Errorf("check on B: exit %d\n%s%s", code, out, errs)
	}
}
