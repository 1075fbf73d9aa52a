package testscripts

// Each error kind survives the command line, the wire and --json (issue
// 13, item 6): a command that fails with it exits with the documented code,
// run on a local repository and through --node on a serving node that
// holds the same objects, and with --json its one JSON value names the
// kind. Real processes: a `loft serve` on 127.0.0.1 and a client pinned to
// it.

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type kindCase struct {
	kind string   // the kind under test
	args []string // the command, after the flags that choose the repository
	exit int      // the documented exit code
	// With --json, stdout holds either {"error":{"code":jsonErr}} or a
	// result whose failed entries carry exactly the codes failed.
	jsonErr string
	failed  []string
	ways    []string // "local", "remote" (--node home), "client" (no --node)
	prep    []string // run the same way before each run, must succeed
}

func kindCases() []kindCase {
	both := []string{"local", "remote"}
	return []kindCase{
		{kind: "not_found", args: []string{"get", "nosuch.txt", "-"}, exit: 3, jsonErr: "not_found", ways: both},
		{kind: "not_found", args: []string{"versions", "nosuch"}, exit: 3, jsonErr: "not_found", ways: both},
		{kind: "not_found", args: []string{"ls", "nosuch"}, exit: 3, jsonErr: "not_found", ways: both},
		{kind: "not_found", args: []string{"restore", "nosuch"}, exit: 3, jsonErr: "not_found", ways: both},
		{kind: "not_found", args: []string{"get", "keep.txt", "--version", "9", "-"}, exit: 3, jsonErr: "not_found", ways: both},
		{kind: "not_found", args: []string{"rm", "nosuch"}, exit: 3, failed: []string{"not_found"}, ways: both},

		{kind: "deleted", args: []string{"get", "gone.txt", "-"}, exit: 3, jsonErr: "deleted", ways: both},
		{kind: "deleted", args: []string{"get", "gone.txt", "--version", "2", "-"}, exit: 3, jsonErr: "deleted", ways: both},
		{kind: "deleted", args: []string{"rm", "gone.txt"}, exit: 3, failed: []string{"deleted"}, ways: both},

		{kind: "invalid", args: []string{"get", "../x", "-"}, exit: 2, jsonErr: "invalid", ways: both},
		{kind: "invalid", args: []string{"ls", "a//b"}, exit: 2, jsonErr: "invalid", ways: both},
		{kind: "invalid", args: []string{"versions", "/abs"}, exit: 2, jsonErr: "invalid", ways: both},
		{kind: "invalid", args: []string{"restore", "keep.txt", "--version", "-1"}, exit: 2, jsonErr: "invalid", ways: both},
		{kind: "invalid", args: []string{"rm"}, exit: 2, jsonErr: "invalid", ways: both},

		{kind: "integrity", args: []string{"get", "bad.bin", "-"}, exit: 4, jsonErr: "integrity", ways: both},

		{kind: "partial", args: []string{"rm", "present.txt", "missing.txt"}, exit: 5, failed: []string{"not_found"},
			ways: both, prep: []string{"restore", "present.txt"}},

		{kind: "peer", args: []string{"--node", "nosuchpeer", "ls"}, exit: 8, jsonErr: "peer", ways: []string{"client"}},
		{kind: "peer", args: []string{"--node", "dead", "ls"}, exit: 8, jsonErr: "peer", ways: []string{"client"}},
	}
}

// deadAddr returns a UDP address on 127.0.0.1 where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// newChunks returns the chunk files in repo that are not in before.
func newChunks(t *testing.T, repo string, before []string) []string {
	t.Helper()
	after, err := chunkFiles(repo)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range after {
		if !slices.Contains(before, f) {
			out = append(out, f)
		}
	}
	return out
}

// TestErrorKinds runs, for each kind, commands that fail with it on a local
// repository and through --node on a node holding the same objects, without
// and with --json.
func TestErrorKinds(t *testing.T) {
	dir := t.TempDir()
	e := newRemoteEnv(t, filepath.Join(dir, "repos"))
	src := filepath.Join(dir, "src")
	for i, name := range []string{"keep.txt", "gone.txt", "present.txt"} {
		randFile(t, filepath.Join(src, name), 1000+i, uint64(31+i))
	}
	randFile(t, filepath.Join(src, "bad.bin"), 100<<10, 34) // one chunk, stored as it is

	ways := map[string][]string{"local": e.localArgs(), "remote": e.remoteArgs(), "client": {"--repo", e.client}}
	storeOf := map[string]string{"local": e.local, "remote": e.home.repo}
	for _, way := range []string{"local", "remote"} {
		in := func(args ...string) { t.Helper(); must(t, ways[way][1], slices.Concat(ways[way][2:], args)...) }
		in("put", filepath.Join(src, "keep.txt"), filepath.Join(src, "gone.txt"), filepath.Join(src, "present.txt"))
		in("rm", "gone.txt")
		// bad.bin's chunk is the one put adds; one byte of its payload
		// flips, on the local repository and on the node.
		before, err := chunkFiles(storeOf[way])
		if err != nil {
			t.Fatal(err)
		}
		in("put", filepath.Join(src, "bad.bin"))
		added := newChunks(t, storeOf[way], before)
		if len(added) != 1 {
			t.Fatalf("%s: put of bad.bin added %d chunk files, want 1: %q", way, len(added), added)
		}
		flipByte(t, added[0])
	}
	// A pinned peer at an address where nothing answers.
	must(t, e.client, "peer", "add", strings.TrimSpace(must(t, e.local, "id")), deadAddr(t), "--name", "dead")

	for _, c := range kindCases() {
		for _, way := range c.ways {
			// Subtests kind/command/way; a slash in the command would nest.
			cmd := strings.ReplaceAll(strings.Join(c.args, "_"), "/", "_")
			t.Run(fmt.Sprintf("%s/%s/%s", c.kind, cmd, way), func(t *testing.T) {
				for _, js := range []bool{false, true} {
					if c.prep != nil {
						must(t, ways[way][1], slices.Concat(ways[way][2:], c.prep)...)
					}
					args := slices.Concat(ways[way], c.args)
					if js {
						args = append(args, "--json")
					}
					out, errs, code := loftRun(t, time.Minute, nil, args...)
					what := "loft " + strings.Join(args, " ")
					if !js {
						if code != c.exit {
							t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, code, c.exit, out, errs)
						}
						if !errorLines.MatchString(errs) {
							t.Fatalf("%s: stderr is not made of one-line \"loft: \" errors\nstderr:\n%s", what, errs)
						}
						continue
					}
					var res struct {
						Error *struct {
							Code string `json:"code"`
							Exit int    `json:"exit"`
						} `json:"error"`
						Failed []struct {
							Code string `json:"code"`
						} `json:"failed"`
					}
					oneJSON(t, what, out, errs, &res)
					got := "(none)"
					var failed []string
					switch {
					case res.Error != nil:
						got = res.Error.Code
					default:
						for _, f := range res.Failed {
							failed = append(failed, f.Code)
						}
						got = fmt.Sprint(failed)
					}
					if code != c.exit {
						t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, code, c.exit, out, errs)
					}
					switch {
					case c.jsonErr != "":
						if res.Error == nil || res.Error.Code != c.jsonErr || res.Error.Exit != c.exit {
							t.Fatalf("%s: --json does not say error %s, exit %d (code %s)\nstdout:\n%s\nstderr:\n%s",
								what, c.jsonErr, c.exit, got, out, errs)
						}
					default:
						if res.Error != nil || !slices.Equal(failed, c.failed) {
							t.Fatalf("%s: --json failed codes %s, want a result with %v\nstdout:\n%s\nstderr:\n%s",
								what, got, c.failed, out, errs)
						}
					}
				}
			})
		}
	}

	// Nothing above changed what either side holds: the same objects.
	if l, h := listing(t, e.local), listing(t, e.home.repo); !slices.Equal(l, h) {
		t.Fatalf("local holds %q, the node %q", l, h)
	}
}
