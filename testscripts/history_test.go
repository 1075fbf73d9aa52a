package testscripts

// A catalog that goes back in time: restored from a backup (or a WAL that
// SQLite dropped) after its node wrote changes that its peers hold. Real
// `loft serve` processes on 127.0.0.1.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// historyStatus is the part of status --json these tests read.
type historyStatus struct {
	History struct {
		Quarantined int64 `json:"quarantined"`
		Refused     []struct {
			Peer, Name, Reason string
		} `json:"refused"`
		Events int64 `json:"events"`
		Recent []struct {
			Kind   string          `json:"kind"`
			Detail json.RawMessage `json:"detail"`
		} `json:"recent"`
	} `json:"history"`
}

func historyOf(t *testing.T, repo string) historyStatus {
	t.Helper()
	var st historyStatus
	if err := json.Unmarshal([]byte(must(t, repo, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// listing returns the names `ls -r` prints, sorted.
func listing(t *testing.T, repo string) []string {
	t.Helper()
	out := strings.Fields(must(t, repo, "ls", "-r"))
	slices.Sort(out)
	return out
}

// backInTime takes a's catalog back to the copy saved: the serving process
// must be stopped; the WAL goes with the old file, as a restore from a
// backup of catalog.db does.
func backInTime(t *testing.T, repo, saved string) {
	t.Helper()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(filepath.Join(repo, "catalog.db"+suffix))
	}
	copyFile(t, saved, filepath.Join(repo, "catalog.db"))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCatalogBackInTime is the scenario, both ways: A and B paired;
// A's catalog is saved; A writes x1 and x2, which B receives; A's catalog is
// put back; A writes y1, y2, y3, once with A serving (it learns first what
// it lost) and once before A serves again (its new writes reuse the numbers
// of the lost ones). Afterwards both nodes list all five, A holds every
// chunk again, check passes on both, and status says what happened.
func TestCatalogBackInTime(t *testing.T) {
	for _, servingFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("serving-first=%v", servingFirst), func(t *testing.T) {
			dir := t.TempDir()
			ra, rb := newRepo(t, filepath.Join(dir, "a")), newRepo(t, filepath.Join(dir, "b"))
			a, b := serve(t, ra), serve(t, rb)
			pair(t, a, b)
			base := filepath.Join(dir, "base")
			randFile(t, base, 50<<10, 1)
			must(t, ra, "put", base)
			waitFor(t, time.Minute, "B to list base", func() (bool, string) {
				out := must(t, rb, "ls")
				return strings.Contains(out, "base"), out
			})

			a.stop()
			saved := filepath.Join(dir, "catalog-backup.db")
			copyFile(t, filepath.Join(ra, "catalog.db"), saved)
			a = serveAt(t, ra, a.addr)
			for i, name := range []string{"x1", "x2"} {
				p := filepath.Join(dir, name)
				randFile(t, p, 300<<10, uint64(10+i))
				must(t, ra, "put", p)
			}
			waitFor(t, time.Minute, "B to list x1 and x2", func() (bool, string) {
				out := must(t, rb, "ls")
				return strings.Contains(out, "x1") && strings.Contains(out, "x2"), out
			})

			a.stop()
			backInTime(t, ra, saved)
			if got := listing(t, ra); slices.Contains(got, "x1") {
				t.Fatalf("the restored catalog lists %v", got)
			}
			if servingFirst {
				a = serveAt(t, ra, a.addr)
				// A learns from B what its catalog lost before it writes.
				waitFor(t, time.Minute, "A to take back x1 and x2", func() (bool, string) {
					out := must(t, ra, "ls")
					return strings.Contains(out, "x1") && strings.Contains(out, "x2"), out
				})
			}
			for i, name := range []string{"y1", "y2", "y3"} {
				p := filepath.Join(dir, name)
				randFile(t, p, 300<<10, uint64(20+i))
				must(t, ra, "put", p)
			}
			if !servingFirst {
				a = serveAt(t, ra, a.addr)
			}
			want := []string{"base", "x1", "x2", "y1", "y2", "y3"}
			for _, r := range []string{ra, rb} {
				waitFor(t, time.Minute, "both nodes to list all five writes", func() (bool, string) {
					got := listing(t, r)
					return slices.Equal(got, want), fmt.Sprintf("%s lists %v", filepath.Base(r), got)
				})
			}
			// Every write reads back on both nodes with its own content, A's
			// from its own store: the chunks of x1 and x2 stayed on its disk.
			for _, r := range []string{ra, rb} {
				for _, name := range want {
					got := filepath.Join(dir, "out-"+filepath.Base(r), name)
					os.MkdirAll(filepath.Dir(got), 0o755)
					must(t, r, "get", name, got)
					sameFile(t, filepath.Join(dir, name), got)
				}
			}
			st := status(t, ra)
			if st.Node.Chunks < 6 {
				t.Errorf("A holds %d chunks after taking back x1 and x2", st.Node.Chunks)
			}
			for _, r := range []string{ra, rb} {
				if out, errs, code := run(t, r, "check", "--read-data"); code != 0 {
					t.Errorf("check on %s: exit %d\n%s%s", filepath.Base(r), code, out, errs)
				}
			}
			// A says what happened: its catalog had gone back in time.
			h := historyOf(t, ra)
			if !slices.ContainsFunc(h.History.Recent, func(e struct {
				Kind   string          `json:"kind"`
				Detail json.RawMessage `json:"detail"`
			}) bool {
				return e.Kind == "rewound"
			}) {
				t.Errorf("A's status does not say its catalog went back in time: %+v", h.History)
			}
			out := must(t, ra, "check")
			if !strings.Contains(out, "history: rewound") {
				t.Errorf("A's check does not report the rewind:\n%s", out)
			}
		})
	}
}

// TestCatalogBackInTimeGC: while A's peer is away, gc on the restored
// catalog keeps the chunk files of the changes it lost (it cannot yet know
// they are not orphans); once the peer is back, A takes the changes back and
// reads them from its own disk.
func TestCatalogBackInTimeGC(t *testing.T) {
	dir := t.TempDir()
	ra, rb := newRepo(t, filepath.Join(dir, "a")), newRepo(t, filepath.Join(dir, "b"))
	a, b := serve(t, ra), serve(t, rb)
	pair(t, a, b)
	a.stop()
	saved := filepath.Join(dir, "catalog-backup.db")
	copyFile(t, filepath.Join(ra, "catalog.db"), saved)
	a = serveAt(t, ra, a.addr)
	x := filepath.Join(dir, "x")
	randFile(t, x, 2<<20, 3)
	must(t, ra, "put", x)
	waitFor(t, time.Minute, "B to list x", func() (bool, string) {
		out := must(t, rb, "ls")
		return strings.Contains(out, "x"), out
	})
	a.stop()
	b.stop()
	backInTime(t, ra, saved)
	chunks := func() int {
		n := 0
		root := filepath.Join(ra, "chunks")
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if rel, _ := filepath.Rel(root, p); err == nil && !d.IsDir() && !strings.HasPrefix(rel, "tmp") {
				n++
			}
			return nil
		})
		return n
	}
	before := chunks()
	if before == 0 {
		t.Fatal("A holds no chunk files")
	}
	out := must(t, ra, "gc", "--grace", "0s", "--json")
	var res struct {
		Orphans     int64  `json:"orphans"`
		OrphansKept string `json:"orphans_kept"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Orphans != 0 || res.OrphansKept == "" || chunks() != before {
		t.Fatalf("gc with the peer away removed %d orphans (kept: %q), %d of %d chunk files left", res.Orphans, res.OrphansKept, chunks(), before)
	}
	b = serveAt(t, rb, b.addr)
	waitFor(t, time.Minute, "B to serve", func() (bool, string) {
		_, errs, code := run(t, ra, "--node", b.id, "ls")
		return code == 0, errs
	})
	// gc asks the peer first: A takes x back, and x's files are not orphans.
	out = must(t, ra, "gc", "--grace", "0s", "--json")
	res.Orphans, res.OrphansKept = 0, ""
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Orphans != 0 || res.OrphansKept != "" {
		t.Fatalf("gc with the peer back: removed %d orphans, kept %q\n%s", res.Orphans, res.OrphansKept, out)
	}
	b.stop() // x reads back from A's own disk
	got := filepath.Join(dir, "x.out")
	must(t, ra, "get", "x", got)
	sameFile(t, x, got)
	st := status(t, ra)
	if st.Node.Chunks == 0 {
		t.Fatalf("A holds no chunk after taking x back")
	}
	must(t, ra, "check", "--read-data")
}
