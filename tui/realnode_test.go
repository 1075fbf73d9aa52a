package tui

// The files and gc actions against a real node (the repository of the
// golden tests), driven by the harness: what the fake cannot show, such
// as the catalog's own names for directories.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loftstore/loft/names"
)

func TestTUIRealNodeActions(t *testing.T) {
	n := buildRepo(t, false)
	h := newHarness(t, n, 100, 30)
	h.requireView("All 1.6 MiB are on this node only")
	h.key("2")
	h.requireView("docs/", "music/", "notes.txt", "photos/")

	// Into photos/2024 and back up, one level per backspace.
	h.keys("down", "down", "down", "enter")
	h.until("photos", func() bool { return !h.model().files.loading })
	h.requireView("/photos", "2024/", "cat.png")
	h.key("enter")
	h.until("photos/2024", func() bool { return !h.model().files.loading })
	h.requireView("beach.jpg", "city.jpg")
	h.key("backspace")
	h.until("photos", func() bool { return !h.model().files.loading })
	h.requireView("cat.png")
	h.refuseView("beach.jpg")

	// Get the directory photos/2024 (the selection) to a directory.
	dest := t.TempDir()
	h.key("g")
	h.typeText(dest)
	h.key("enter")
	h.until("the get", func() bool { return strings.Contains(h.view(), "got photos/2024") })
	h.refuseView("error")
	for _, f := range []string{"beach.jpg", "city.jpg"} {
		matches, _ := filepath.Glob(filepath.Join(dest, "*", f))
		matches2, _ := filepath.Glob(filepath.Join(dest, f))
		if len(matches)+len(matches2) == 0 {
			var all []string
			filepath.Walk(dest, func(p string, _ os.FileInfo, _ error) error { all = append(all, p); return nil })
			t.Fatalf("%s was not got; %s holds %v", f, dest, all)
		}
	}

	// Delete cat.png: confirmed, a new version that is a deletion.
	h.keys("down", "d", "y")
	h.until("the deletion", func() bool { return strings.Contains(h.view(), "deleted photos/cat.png") })
	h.refuseView("error")
	if v, err := n.Versions(t.Context(), names.Must("photos/cat.png")); err != nil || !v[0].Deleted {
		t.Fatalf("photos/cat.png versions %+v, %v", v, err)
	}

	// Restore version 2 of notes.txt (the middle one kept).
	h.key("backspace")
	h.until("the root", func() bool { return !h.model().files.loading && h.model().files.dir == "" })
	h.keys("down", "down", "v")
	h.until("versions", func() bool { return h.model().files.versions != nil })
	h.requireView("Versions of notes.txt")
	h.keys("down", "r")
	h.until("the restore", func() bool { return strings.Contains(h.view(), "restored notes.txt") })
	h.requireView("version 5 has the content of version 3")
	vs, err := n.Versions(t.Context(), names.Must("notes.txt"))
	if err != nil || vs[0].Num != 5 || vs[0].RestoredFrom != 3 {
		t.Fatalf("notes.txt versions %+v, %v", vs, err)
	}

	// GC: preview, then run, and the history has the run.
	h.key("4")
	h.key("p")
	h.until("the preview", func() bool { return h.model().gcScreen.preview != nil })
	h.key("r")
	h.until("the run", func() bool { return strings.Contains(h.view(), "gc removed") })
	h.until("the history", func() bool { return len(h.model().gcScreen.runs) == 2 })

	// The feed has what the dashboard did.
	h.key("ctrl+r")
	h.key("5")
	h.until("the feed", func() bool { return strings.Contains(h.view(), "restored notes.txt as version 5") })
	h.requireView("deleted photos/cat.png")
}
