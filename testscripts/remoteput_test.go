package testscripts

// A remote put (--node) stores exactly what the local put would: both find
// their inputs with one walker and check them the same way (issue 13, item
// 5). Each case runs both ways, with real processes: on a local repository,
// and through --node on a `loft serve` on 127.0.0.1 that a client
// repository, pinned to it by hand, puts into.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// remoteEnv is a local repository, and a serving node with a client pinned
// to it: `--repo client --node home` works on home's repository.
type remoteEnv struct {
	local, client string
	home          *server
}

func newRemoteEnv(t *testing.T, dir string) remoteEnv {
	t.Helper()
	e := remoteEnv{local: filepath.Join(dir, "local"), client: filepath.Join(dir, "client")}
	must(t, e.local, "init")
	must(t, e.client, "init")
	e.home = serve(t, newRepo(t, filepath.Join(dir, "home")))
	// As in TestRemotePutResume: each side pins the other, no pairing.
	must(t, e.home.repo, "peer", "add", strings.TrimSpace(must(t, e.client, "id")))
	must(t, e.client, "peer", "add", e.home.id, e.home.addr, "--name", "home")
	return e
}

// localArgs and remoteArgs are the flags that choose where a command runs.
func (e remoteEnv) localArgs() []string  { return []string{"--repo", e.local} }
func (e remoteEnv) remoteArgs() []string { return []string{"--repo", e.client, "--node", "home"} }

// loftRun runs loft with args (repository flags included) and stdin as its
// standard input (none when nil). It fails the test when loft does not
// finish within limit, or cannot run.
func loftRun(t *testing.T, limit time.Duration, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "loft", args...)
	cmd.Env = childEnv()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("loft %s did not finish within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), limit, out.String(), errb.String())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("loft %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0
}

// oneJSON decodes stdout, which must be exactly one JSON value on one line,
// into v.
func oneJSON(t *testing.T, what, stdout, stderr string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: stdout is not JSON: %v\nstdout:\n%s\nstderr:\n%s", what, err, stdout, stderr)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: stdout holds more than one JSON value\nstdout:\n%s\nstderr:\n%s", what, stdout, stderr)
	}
	if strings.Count(strings.TrimRight(stdout, "\n"), "\n") != 0 {
		t.Fatalf("%s: stdout is not one line\nstdout:\n%s\nstderr:\n%s", what, stdout, stderr)
	}
}

// putOutcome is what the comparison of a local and a remote put looks at.
type putOutcome struct {
	Exit      int
	ErrCode   string // .error.code of a put that failed before a result
	Files     int64
	Unchanged int64
	Skipped   int
	Failed    []string // each failed entry's code, in order
}

func (o putOutcome) String() string {
	if o.ErrCode != "" {
		return fmt.Sprintf("exit %d, error %s", o.Exit, o.ErrCode)
	}
	return fmt.Sprintf("exit %d, files %d, unchanged %d, skipped %d, failed %v", o.Exit, o.Files, o.Unchanged, o.Skipped, o.Failed)
}

func putOutcomeOf(t *testing.T, what, stdout, stderr string, code int) putOutcome {
	t.Helper()
	var res struct {
		Files     int64             `json:"files"`
		Unchanged int64             `json:"unchanged"`
		Skipped   []json.RawMessage `json:"skipped"`
		Failed    []struct {
			Code string `json:"code"`
		} `json:"failed"`
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	oneJSON(t, what, stdout, stderr, &res)
	o := putOutcome{Exit: code, Files: res.Files, Unchanged: res.Unchanged, Skipped: len(res.Skipped), Failed: []string{}}
	if res.Error != nil {
		o.ErrCode = res.Error.Code
	}
	for _, f := range res.Failed {
		o.Failed = append(o.Failed, f.Code)
	}
	return o
}

// getBoth asserts that name reads back as want from the local repository
// and, over --node, from the serving node.
func getBoth(t *testing.T, e remoteEnv, name string, want []byte) {
	t.Helper()
	for way, args := range map[string][]string{"local": e.localArgs(), "remote": e.remoteArgs()} {
		out, errs, code := loftRun(t, time.Minute, nil, append(args, "get", name, "-")...)
		if code != 0 || out != string(want) {
			t.Fatalf("%s get %s: exit %d, %d bytes, want %d identical bytes\nstderr:\n%s", way, name, code, len(out), len(want), errs)
		}
	}
}

type putCase struct {
	name string
	// inputs makes the inputs in dir, returns put's arguments and its
	// standard input (nil for none).
	inputs func(t *testing.T, dir string) (args []string, stdin []byte)
	want   putOutcome
	stderr string   // text both ways' stderr must hold
	stored []string // ls -r of both repositories afterwards, sorted
	// after checks more, with the inputs' directory.
	after func(t *testing.T, e remoteEnv, dir string)
}

func putCases() []putCase {
	const aaaSize = 24 << 20
	return []putCase{
		{
			name: "symlink-to-dir",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				randFile(t, filepath.Join(dir, "target", "one"), 3000, 101)
				randFile(t, filepath.Join(dir, "target", "sub", "two"), 5000, 102)
				if err := os.Symlink(filepath.Join(dir, "target"), filepath.Join(dir, "lnk")); err != nil {
					t.Fatal(err)
				}
				return []string{filepath.Join(dir, "lnk")}, nil
			},
			want:   putOutcome{Exit: 0, Files: 2, Failed: []string{}},
			stored: []string{"lnk/one", "lnk/sub/two"},
		},
		{
			// Refused by the walk, before anything opens it: a read of
			// /dev/zero never ends, which loftRun's limit would catch.
			name: "dev-zero",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				return []string{"/dev/zero"}, nil
			},
			want:   putOutcome{Exit: 2, Failed: []string{"invalid"}},
			stderr: "is not a regular file, a directory or a pipe",
			stored: []string{},
		},
		{
			name: "same-base-name",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				randFile(t, filepath.Join(dir, "d1", "same"), 2000, 103)
				randFile(t, filepath.Join(dir, "d2", "same"), 2100, 104)
				return []string{filepath.Join(dir, "d1", "same"), filepath.Join(dir, "d2", "same")}, nil
			},
			want:   putOutcome{Exit: 5, Files: 1, Failed: []string{"invalid"}},
			stderr: "two inputs would be stored under one name",
			stored: []string{"same"},
			after: func(t *testing.T, e remoteEnv, dir string) {
				first, err := os.ReadFile(filepath.Join(dir, "d1", "same"))
				if err != nil {
					t.Fatal(err)
				}
				getBoth(t, e, "same", first)
			},
		},
		{
			// Six identical maximum-size chunks: a remote put used to fail
			// with "peer stored 1 of 5 chunks".
			name: "24MiB-one-byte-value",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				p := filepath.Join(dir, "aaa")
				if err := os.WriteFile(p, bytes.Repeat([]byte{'a'}, aaaSize), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{p}, nil
			},
			want:   putOutcome{Exit: 0, Files: 1, Failed: []string{}},
			stored: []string{"aaa"},
			after: func(t *testing.T, e remoteEnv, dir string) {
				back := filepath.Join(dir, "aaa.back")
				must(t, e.client, "--node", "home", "get", "aaa", back)
				sameFile(t, filepath.Join(dir, "aaa"), back)
				getBoth(t, e, "aaa", bytes.Repeat([]byte{'a'}, aaaSize))
				must(t, e.home.repo, "check", "--read-data")
			},
		},
		{
			name: "empty-file",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				p := filepath.Join(dir, "empty")
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{p}, nil
			},
			want:   putOutcome{Exit: 0, Files: 1, Failed: []string{}},
			stored: []string{"empty"},
			after: func(t *testing.T, e remoteEnv, dir string) {
				getBoth(t, e, "empty", nil)
			},
		},
		{
			// A pipe inside a tree is skipped with a warning, never opened:
			// nobody writes to it, so a read would hang.
			name: "fifo-in-dir",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				randFile(t, filepath.Join(dir, "fdir", "file"), 4000, 105)
				if err := syscall.Mkfifo(filepath.Join(dir, "fdir", "pipe"), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{filepath.Join(dir, "fdir")}, nil
			},
			want:   putOutcome{Exit: 0, Files: 1, Skipped: 1, Failed: []string{}},
			stderr: "fdir/pipe: not a regular file (named pipe)",
			stored: []string{"fdir/file"},
		},
		{
			name: "bad-as-name",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				randFile(t, filepath.Join(dir, "f"), 100, 106)
				return []string{filepath.Join(dir, "f"), "--as", "a//b"}, nil
			},
			want:   putOutcome{Exit: 2, ErrCode: "invalid", Failed: []string{}},
			stderr: `bad object name "a//b"`,
			stored: []string{},
		},
		{
			name: "stdin-as",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				return []string{"-", "--as", "std/in.txt"}, []byte("some bytes from a pipe\n")
			},
			want:   putOutcome{Exit: 0, Files: 1, Failed: []string{}},
			stored: []string{"std/in.txt"},
			after: func(t *testing.T, e remoteEnv, dir string) {
				getBoth(t, e, "std/in.txt", []byte("some bytes from a pipe\n"))
			},
		},
		{
			name: "missing-input",
			inputs: func(t *testing.T, dir string) ([]string, []byte) {
				return []string{filepath.Join(dir, "nosuch")}, nil
			},
			want:   putOutcome{Exit: 3, Failed: []string{"not_found"}},
			stored: []string{},
		},
	}
}

// TestRemotePutSameAsLocal runs each put case locally and over --node and
// compares exit codes, results and what each stored. The cases share one
// local repository and one node (a fresh pair per case costs a dozen
// processes); each stores under names of its own, and what it added to
// each side's `ls -r` is compared.
func TestRemotePutSameAsLocal(t *testing.T) {
	dir := t.TempDir()
	e := newRemoteEnv(t, filepath.Join(dir, "repos"))
	for i, c := range putCases() {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join(dir, fmt.Sprint("in", i))
			if err := os.MkdirAll(in, 0o755); err != nil {
				t.Fatal(err)
			}
			args, stdin := c.inputs(t, in)
			args = append(append([]string{"put"}, args...), "--json")
			localBefore, homeBefore := listing(t, e.local), listing(t, e.home.repo)

			got := map[string]putOutcome{}
			for _, way := range []struct {
				name  string
				where []string
			}{{"local", e.localArgs()}, {"remote", e.remoteArgs()}} {
				full := slices.Concat(way.where, args)
				out, errs, code := loftRun(t, time.Minute, stdin, full...)
				what := fmt.Sprintf("%s: loft %s", way.name, strings.Join(full, " "))
				o := putOutcomeOf(t, what, out, errs, code)
				got[way.name] = o
				if !reflect.DeepEqual(o, c.want) {
					t.Errorf("%s: %v, want %v\nstdout:\n%s\nstderr:\n%s", what, o, c.want, out, errs)
				}
				if c.stderr != "" && !strings.Contains(errs, c.stderr) {
					t.Errorf("%s: stderr does not say %q\nstderr:\n%s", what, c.stderr, errs)
				}
				if code != 0 && !errorLines.MatchString(errs) {
					t.Errorf("%s: stderr is not made of \"loft: \" lines\nstderr:\n%s", what, errs)
				}
			}
			if !reflect.DeepEqual(got["local"], got["remote"]) {
				t.Errorf("local put: %v; remote put: %v", got["local"], got["remote"])
			}

			local, home := added(localBefore, listing(t, e.local)), added(homeBefore, listing(t, e.home.repo))
			if !slices.Equal(local, home) || !slices.Equal(local, c.stored) {
				t.Errorf("stored: local %q, home %q, want %q", local, home, c.stored)
			}
			if c.after != nil && !t.Failed() {
				c.after(t, e, in)
			}
		})
	}
	if local, home := listing(t, e.local), listing(t, e.home.repo); !slices.Equal(local, home) {
		t.Errorf("after every case: local %q, home %q", local, home)
	}
	if local, home := heads(t, e.local), heads(t, e.home.repo); !reflect.DeepEqual(local, home) {
		t.Errorf("after every case, the newest versions differ:\nlocal %v\nhome  %v", local, home)
	}
}

// head is what a put decides of a version: all but when and where.
type head struct {
	Size        int64  `json:"size"`
	Mode        uint32 `json:"mode"`
	ContentType string `json:"content_type"`
	SHA256      string `json:"sha256"`
}

// heads returns the newest version of every object of repo, by name.
func heads(t *testing.T, repo string) map[string]head {
	t.Helper()
	var entries []struct {
		Name string `json:"name"`
		head
	}
	if err := json.Unmarshal([]byte(must(t, repo, "ls", "-r", "--json")), &entries); err != nil {
		t.Fatalf("ls -r --json of %s: %v", repo, err)
	}
	out := map[string]head{}
	for _, e := range entries {
		out[e.Name] = e.head
	}
	return out
}

// added returns the names in after that are not in before (both sorted).
func added(before, after []string) []string {
	out := []string{}
	for _, n := range after {
		if _, found := slices.BinarySearch(before, n); !found {
			out = append(out, n)
		}
	}
	return out
}

// dirSize sums the sizes of the regular files under dir, skipping what
// vanishes during the walk (staged chunk files are renamed).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestRemotePutNodeDies kills the serving node in the middle of a remote
// put: the client exits 8 (peer) with one "loft: " line on stderr and the
// peer error in --json, and the node's repository passes check.
func TestRemotePutNodeDies(t *testing.T) {
	dir := t.TempDir()
	e := newRemoteEnv(t, filepath.Join(dir, "repos"))
	src := filepath.Join(dir, "big")
	randFile(t, src, 200<<20, 21)

	cmd := exec.Command("loft", "--repo", e.client, "--node", "home", "put", src, "--json")
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// stopPut kills the put if it still runs and waits for it: only then
	// are its output buffers safe to read.
	exited := false
	var err error
	stopPut := func() string {
		if !exited {
			cmd.Process.Kill()
			err, exited = <-done, true
		}
		return errb.String()
	}
	defer stopPut()

	// The node has received some of the file: its store holds over 8 MiB.
	chunks := filepath.Join(e.home.repo, "chunks")
	deadline := time.Now().Add(2 * time.Minute)
	for dirSize(chunks) <= 8<<20 {
		select {
		case err = <-done:
			exited = true
			t.Fatalf("the put ended (%v) before the node held 8 MiB; stderr:\n%s", err, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node holds %d bytes after 2 minutes of the put; stderr:\n%s", dirSize(chunks), stopPut())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.home.kill()

	// The client notices at the latest when the connection idles out (30s).
	select {
	case err = <-done:
		exited = true
	case <-time.After(2 * time.Minute):
		t.Fatalf("the put still runs 2 minutes after the node died; stderr:\n%s", stopPut())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 8 {
		t.Fatalf("put to a node that died: %v, want exit 8\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "loft: ") {
		t.Fatalf("stderr is not one \"loft: \" line:\n%s", errb.String())
	}
	var res jsonErrorOut
	oneJSON(t, "put to a node that died", out.String(), errb.String(), &res)
	if res.Error.Code != "peer" || res.Error.Exit != 8 {
		t.Fatalf("put to a node that died: --json says %+v, want code peer, exit 8", res.Error)
	}
	checkPasses(t, e.home.repo)
}

// jsonErrorOut is the --json output of a command that failed before it had
// a result.
type jsonErrorOut struct {
	Error struct {
		Code    string `json:"code"`
		Exit    int    `json:"exit"`
		Message string `json:"message"`
	} `json:"error"`
}
