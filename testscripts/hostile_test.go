package testscripts

// A paired peer whose catalog was edited to hold names that break the
// rules: the other node refuses each where it enters, quarantines the
// changes, writes nothing outside a destination, and keeps taking the
// peer's good changes. Real `loft serve` processes on 127.0.0.1.

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// badNames are the names a hostile peer's catalog holds: one of each kind
// the rules refuse. abs is an absolute path inside the test's directory, so
// that a write to it would be seen. A name that is not UTF-8 cannot cross
// the wire as one (JSON carries UTF-8: the peer's encoder replaces the bad
// bytes with U+FFFD), so it arrives as the valid name notUTF8Arrives.
func badNames(abs string) map[string]string {
	return map[string]string{
		"dotdot":   "pics/x/../../../../out",
		"absolute": abs,
		"empty":    "pics//empty",
		"nul":      "pics/nul\x00byte",
		"long":     "pics/" + strings.Repeat("l", 5000),
	}
}

const (
	notUTF8        = "pics/bad\xff\xfe"
	notUTF8Arrives = "pics/bad\ufffd\ufffd"
)

// renameObjects edits the catalog of a stopped repository: each object
// named from takes the name to, in its row and in the change log, as a
// catalog written by another program could hold it.
func renameObjects(t *testing.T, repo string, rename map[string]string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(repo, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for from, to := range rename {
		for _, q := range []string{`UPDATE objects SET name = ? WHERE name = ?`, `UPDATE changes SET name = ? WHERE name = ?`} {
			res, err := db.Exec(q, to, from)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				t.Fatalf("%s: no row named %q", q, from)
			}
		}
	}
}

// escaped lists the files named "out" or "abs-escaped" anywhere in dir
// except below keep: where an escaping name would have landed.
func escaped(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (d.Name() == "out" || d.Name() == "abs-escaped") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func TestHostilePeerNames(t *testing.T) {
	dir := t.TempDir()
	ra, rb := newRepo(t, filepath.Join(dir, "a")), newRepo(t, filepath.Join(dir, "b"))
	a, b := serve(t, ra), serve(t, rb)
	pair(t, a, b)
	a.stop()

	// B stores a good object, one placeholder per bad name, and a good one
	// after them; then its catalog is edited to give the placeholders
	// their bad names.
	bad := badNames(filepath.Join(dir, "abs-escaped"))
	put := func(name string, seed uint64) string {
		p := filepath.Join(dir, "src", strings.ReplaceAll(name, "/", "_"))
		randFile(t, p, 20<<10, seed)
		must(t, rb, "put", p, "--as", name)
		return p
	}
	ok := put("pics/ok.txt", 1)
	rename := map[string]string{}
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range bad {
			if !yield(k) {
				return
			}
		}
	})
	for i, kind := range kinds {
		placeholder := "pics/bad-" + kind
		put(placeholder, uint64(10+i))
		rename[placeholder] = bad[kind]
	}
	put("pics/bad-utf8", 20)
	rename["pics/bad-utf8"] = notUTF8
	after := put("pics/after.txt", 2)
	b.stop()
	renameObjects(t, rb, rename)
	b = serveAt(t, rb, b.addr)
	a = serveAt(t, ra, a.addr)

	// Replication: A applies the good changes on both sides of the bad ones
	// and quarantines each bad one.
	waitFor(t, time.Minute, "A to list pics/after.txt", func() (bool, string) {
		out := must(t, ra, "ls", "-r")
		return strings.Contains(out, "pics/after.txt"), out
	})
	if got := listing(t, ra); !slices.Equal(got, []string{"pics/after.txt", notUTF8Arrives, "pics/ok.txt"}) {
		t.Errorf("A lists %q", got)
	}
	h := historyOf(t, ra)
	if h.History.Quarantined != int64(len(bad)) {
		t.Errorf("A quarantined %d changes, want %d: %+v", h.History.Quarantined, len(bad), h.History.Refused)
	}
	for _, q := range h.History.Refused {
		if !strings.Contains(q.Reason, "bad object name") || strings.ContainsAny(q.Name, "\x00\xff") {
			t.Errorf("quarantine entry %+v: no reason, or a name not safe to print", q)
		}
	}
	out, errs, code := run(t, ra, "check")
	if code != 0 || strings.Count(out, "quarantine: change") != len(bad) {
		t.Errorf("check on A: exit %d, want 0 with %d quarantine notes\n%s%s", code, len(bad), out, errs)
	}
	out, _, _ = run(t, ra, "status")
	if !strings.Contains(out, fmt.Sprintf("refused from peers: %d changes", len(bad))) {
		t.Errorf("status on A does not count the refused changes:\n%s", out)
	}

	// Replication, then get: only the good objects exist, below DEST.
	dest := filepath.Join(dir, "d1", "d2", "d3", "dest")
	must(t, ra, "get", "/", dest)
	sameFile(t, ok, filepath.Join(dest, "pics", "ok.txt"))
	sameFile(t, after, filepath.Join(dest, "pics", "after.txt"))

	// get --node: B sends its names as it holds them; A refuses each bad
	// one, writes the good ones, and nothing lands outside DEST.
	dest2 := filepath.Join(dir, "e1", "e2", "e3", "dest")
	out, errs, code = run(t, ra, "--node", b.id, "get", "/", dest2, "--json")
	var res struct {
		Files  int64 `json:"files"`
		Failed []struct {
			Path, Code string
		} `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("get --node: %v\n%s%s", err, out, errs)
	}
	// Each bad name fails alone; the one that arrived as another name is
	// not found on the peer.
	if code != 5 || res.Files != 2 || len(res.Failed) != len(bad)+1 {
		var wrote []string
		filepath.WalkDir(dest2, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				wrote = append(wrote, p)
			}
			return nil
		})
		t.Errorf("get --node: exit %d, %d files (%q), %d failed; want 5, 2, %d\n%s%s", code, res.Files, wrote, len(res.Failed), len(bad)+1, out, errs)
	}
	for _, f := range res.Failed {
		if want := "invalid"; f.Path == notUTF8Arrives {
			if f.Code != "not_found" && f.Code != "integrity" {
				t.Errorf("get --node failure %+v: code %q", f, f.Code)
			}
		} else if f.Code != want {
			t.Errorf("get --node failure %+v: code %q, want %s", f, f.Code, want)
		}
	}
	sameFile(t, ok, filepath.Join(dest2, "pics", "ok.txt"))
	if e := escaped(t, dir); len(e) > 0 {
		t.Errorf("files written outside the destination: %q", e)
	}

	// ls --node: the good entries, then an error naming the peer (exit 8).
	out, errs, code = run(t, ra, "--node", b.id, "ls", "pics")
	if code != 8 || !strings.Contains(out, "pics/ok.txt") || !strings.Contains(out, "pics/after.txt") ||
		!strings.Contains(errs, "names that break the rules") {
		t.Errorf("ls --node: exit %d\n%s%s", code, out, errs)
	}

	// The dashboard on A: the bad names are not shown, the refusals are.
	s := startTUI(t, "--repo", ra)
	waitText(t, s.out, 0, 20*time.Second, "Disk use", "Refused", fmt.Sprintf("%d changes from peers", len(bad)))
	s.press("2", "pics/")
	s.press("\r", "ok.txt", "after.txt")
	for _, refused := range []string{"empty", "nul", "llllllll", "abs-escaped"} {
		if strings.Contains(s.out.text(), refused) {
			t.Errorf("the dashboard shows a refused name (%s):\n%s", refused, s.out.text())
		}
	}
	s.quit()

	// The dashboard on B's repository through A (--node): the listing's bad
	// entries are left out, and it says so.
	s = startTUI(t, "--repo", ra, "--node", b.id)
	waitText(t, s.out, 0, 20*time.Second, "1 Overview")
	s.press("2", "pics/")
	// The notice about the refused entry (the absolute name, at the top
	// level) may have come before the key: it is looked for anywhere.
	waitText(t, s.out, 0, 20*time.Second, "names that break the rules")
	off := s.out.len()
	s.press("\r", "ok.txt", "after.txt")
	waitText(t, s.out, off, 20*time.Second, "names that break the rules") // pics//empty, pics/x/../
	s.quit()
	if e := escaped(t, dir); len(e) > 0 {
		t.Errorf("files written outside the destination: %q", e)
	}
	if _, errs, code := run(t, ra, "check", "--read-data"); code != 0 {
		t.Errorf("check --read-data on A: exit %d\n%s", code, errs)
	}
}
