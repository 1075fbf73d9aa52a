package catalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/loftstore/loft/names"
)

// listed is one List result, reduced to what the reference computes.
type listed struct {
	Name    string
	Dir     bool
	Deleted bool
}

func (l listed) String() string {
	s := l.Name
	if l.Deleted {
		s += "(deleted)"
	}
	return s
}

func listAll(t *testing.T, c *Catalog, prefix string, opts ListOptions) []listed {
	t.Helper()
	var out []listed
	pfx, err := names.ParsePrefix(prefix)
	if err != nil {
		t.Fatal(err)
	}
	opts.Below = strings.HasSuffix(prefix, "/") // a trailing slash: only what is below
	err = c.List(context.Background(), pfx, opts, func(e Entry) error {
		if !e.Dir && (e.Head.Name != e.Name || e.Head.Num == 0 || e.Versions < 1) {
			return fmt.Errorf("entry %q has head %q@%d and %d versions", e.Name, e.Head.Name, e.Head.Num, e.Versions)
		}
		if e.Dir && (e.Head.Num != 0 || !strings.HasSuffix(e.Name, "/")) {
			return fmt.Errorf("directory entry %+v", e)
		}
		out = append(out, listed{e.Name, e.Dir, e.Head.Deleted})
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q, %+v): %v", prefix, opts, err)
	}
	return out
}

// wantList is the reference listing: objects maps every name to whether its
// head is a tombstone.
func wantList(objects map[string]bool, prefix string, opts ListOptions) ([]listed, error) {
	pfx, err := names.ParsePrefix(prefix)
	if err != nil {
		return nil, err
	}
	p := pfx.String()
	visible := func(name string) bool { return opts.Deleted || !objects[name] }
	var out []listed
	// The object the prefix names comes first, unless a trailing slash
	// asks for only what is below it.
	if del, ok := objects[p]; ok && p != "" && visible(p) && !strings.HasSuffix(prefix, "/") {
		out = append(out, listed{p, false, del})
	}
	if p != "" {
		p += "/"
	}
	objNames := make([]string, 0, len(objects))
	for n := range objects {
		if strings.HasPrefix(n, p) && visible(n) {
			objNames = append(objNames, n)
		}
	}
	slices.Sort(objNames)
	for _, n := range objNames {
		rest := n[len(p):]
		if i := strings.IndexByte(rest, '/'); i >= 0 && !opts.Recursive {
			dir := p + rest[:i+1]
			if len(out) == 0 || out[len(out)-1].Name != dir {
				out = append(out, listed{dir, true, false})
			}
			continue
		}
		out = append(out, listed{n, false, objects[n]})
	}
	return out, nil
}

// populate adds one version of every name, then deletes those in deleted.
func populate(t *testing.T, c *Catalog, objNames []string, deleted map[string]bool) map[string]bool {
	t.Helper()
	ctx := context.Background()
	err := c.Tx(ctx, func(tx *Tx) error {
		for i, n := range objNames {
			if _, err := tx.AddVersion(ctx, nv(n, n, i%5)); err != nil {
				return err
			}
		}
		for n := range deleted {
			if _, err := tx.Delete(ctx, names.Must(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	objects := make(map[string]bool)
	for _, n := range objNames {
		objects[n] = deleted[n]
	}
	return objects
}

func checkList(t *testing.T, c *Catalog, objects map[string]bool, prefix string, opts ListOptions) []listed {
	t.Helper()
	want, wantErr := wantList(objects, prefix, opts)
	if wantErr != nil {
		if !errors.Is(wantErr, names.ErrBad) {
			t.Fatalf("prefix %q: %v, want names.ErrBad", prefix, wantErr)
		}
		return nil
	}
	got := listAll(t, c, prefix, opts)
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q, %+v)\n got  %v\n want %v", prefix, opts, got, want)
	}
	return got
}

func nameList(ls []listed) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

func TestListOneLevel(t *testing.T) {
	c, _ := newCatalog(t, Options{})
	objects := populate(t, c, []string{"a", "a/b", "a/b/c", "a/c", "a-b", "a.b", "a0", "b/c", "b/d/e", "c"}, nil)

	got := checkList(t, c, objects, "", ListOptions{})
	if want := []string{"a", "a-b", "a.b", "a/", "a0", "b/", "c"}; !slices.Equal(nameList(got), want) {
		t.Fatalf("top level %v, want %v", nameList(got), want)
	}
	got = checkList(t, c, objects, "", ListOptions{Recursive: true})
	if want := []string{"a", "a-b", "a.b", "a/b", "a/b/c", "a/c", "a0", "b/c", "b/d/e", "c"}; !slices.Equal(nameList(got), want) {
		t.Fatalf("recursive %v, want %v", nameList(got), want)
	}
	// "a" names an object and a directory: the object, then its contents;
	// never the siblings a-b, a.b, a0.
	got = checkList(t, c, objects, "a", ListOptions{})
	if want := []string{"a", "a/b", "a/b/", "a/c"}; !slices.Equal(nameList(got), want) {
		t.Fatalf("List(a) %v, want %v", nameList(got), want)
	}
	// With a trailing slash, only what is below "a/": not the object "a".
	if got2 := checkList(t, c, objects, "a/", ListOptions{}); !slices.Equal(got2, got[1:]) {
		t.Fatalf("List(a/) %v, want List(a) %v without a", got2, got)
	}
	if got2 := checkList(t, c, objects, "a//", ListOptions{Recursive: true}); !slices.Equal(nameList(got2), []string{"a/b", "a/b/c", "a/c"}) {
		t.Fatalf("List(a//, recursive) %v", nameList(got2))
	}
	got = checkList(t, c, objects, "b/", ListOptions{})
	if want := []string{"b/c", "b/d/"}; !slices.Equal(nameList(got), want) {
		t.Fatalf("List(b/) %v, want %v", nameList(got), want)
	}
	got = checkList(t, c, objects, "a/b", ListOptions{Recursive: true})
	if want := []string{"a/b", "a/b/c"}; !slices.Equal(nameList(got), want) {
		t.Fatalf("List(a/b, recursive) %v, want %v", nameList(got), want)
	}
	for _, p := range []string{"/", "a-b", "a0", "c", "zz", "b/d", "b/d/e", "a/b/c"} {
		for _, opts := range []ListOptions{{}, {Recursive: true}} {
			checkList(t, c, objects, p, opts)
		}
	}
	for _, p := range []string{"/a", "a//b", "..", "a/./b"} {
		checkList(t, c, objects, p, ListOptions{})
	}

	// fn's error stops the listing.
	stop := errors.New("stop")
	n := 0
	err := c.List(context.Background(), names.Prefix{}, ListOptions{}, func(Entry) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("List with failing fn: %v after %d calls", err, n)
	}

	var walked []string
	if err := c.Walk(context.Background(), names.Must("a").AsPrefix(), func(v Version) error { walked = append(walked, v.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b", "a/b/c", "a/c"}; !slices.Equal(walked, want) { // below a, not a itself
		t.Fatalf("Walk(a) %v, want %v", walked, want)
	}
}

func TestListDeleted(t *testing.T) {
	c, _ := newCatalog(t, Options{})
	objects := populate(t, c, []string{"a", "a/x", "d/gone", "d/gone2", "e/f", "e/g", "z"},
		map[string]bool{"a": true, "d/gone": true, "d/gone2": true, "e/g": true})
	got := checkList(t, c, objects, "", ListOptions{})
	// d/ holds only deleted objects, so it is not shown at all.
	if want := []string{"a/", "e/", "z"}; !slices.Equal(nameList(got), want) {
		t.Fatalf("top level %v, want %v", nameList(got), want)
	}
	got = checkList(t, c, objects, "", ListOptions{Deleted: true})
	if want := []string{"a", "a/", "d/", "e/", "z"}; !slices.Equal(nameList(got), want) || !got[0].Deleted {
		t.Fatalf("top level with deleted %v, want %v", got, want)
	}
	for _, p := range []string{"a", "d", "e", "e/g"} {
		for _, opts := range []ListOptions{{}, {Deleted: true}, {Recursive: true}, {Recursive: true, Deleted: true}} {
			checkList(t, c, objects, p, opts)
		}
	}
	// Undelete brings it back.
	if _, _, err := restore(c, "d/gone", 0); err != nil {
		t.Fatal(err)
	}
	objects["d/gone"] = false
	checkList(t, c, objects, "", ListOptions{})
	checkList(t, c, objects, "d", ListOptions{})
}

// TestListPaging lists 700 objects in 30 directories and more at the top,
// more than the 256 rows List reads at a time.
func TestListPaging(t *testing.T) {
	t.Parallel()
	c, _ := newCatalog(t, Options{})
	var all []string
	deleted := make(map[string]bool)
	for i := range 700 {
		n := fmt.Sprintf("dir%02d/f%03d", i%30, i)
		if i%4 == 0 {
			n = fmt.Sprintf("dir%02d/sub%d/f%03d", i%30, i%3, i)
		}
		all = append(all, n)
		if i%11 == 0 {
			deleted[n] = true
		}
	}
	for i := range 280 {
		all = append(all, fmt.Sprintf("top%03d", i))
	}
	all = append(all, "dir05", "dir05-x", "dir05.x", "dir050")
	objects := populate(t, c, all, deleted)

	got := checkList(t, c, objects, "", ListOptions{})
	if len(got) != 30+280+4 {
		t.Fatalf("top level has %d entries", len(got))
	}
	got = checkList(t, c, objects, "", ListOptions{Recursive: true})
	if len(got) != len(all)-len(deleted) {
		t.Fatalf("recursive listing has %d entries, want %d", len(got), len(all)-len(deleted))
	}
	checkList(t, c, objects, "", ListOptions{Deleted: true})
	for _, p := range []string{"dir05", "dir05/", "dir07/sub1", "top1", "dir0"} {
		checkList(t, c, objects, p, ListOptions{})
	}
	checkList(t, c, objects, "dir29", ListOptions{Recursive: true})
}

// TestListRandom compares List with the reference on random trees over an
// alphabet of characters that sort around '/'.
func TestListRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []string{"a", "b", "-", ".", "0", "/", "\u00e9", "~"}
	randName := func() string {
		for {
			var sb strings.Builder
			for range 1 + rng.IntN(7) {
				sb.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			if _, err := names.Parse(sb.String()); err == nil {
				return sb.String()
			}
		}
	}
	for _, size := range []int{100, 300} {
		c, _ := newCatalog(t, Options{})
		seen := make(map[string]bool)
		var all []string
		deleted := make(map[string]bool)
		for range size {
			n := randName()
			if seen[n] {
				continue
			}
			seen[n] = true
			all = append(all, n)
			if rng.IntN(5) == 0 {
				deleted[n] = true
			}
		}
		objects := populate(t, c, all, deleted)
		prefixes := []string{"", "/"}
		for range 4 {
			prefixes = append(prefixes, randName())
			p := all[rng.IntN(len(all))]
			if i := strings.LastIndexByte(p, '/'); i > 0 {
				prefixes = append(prefixes, p[:i], p[:i+1])
			}
		}
		others := []ListOptions{{Recursive: true}, {Deleted: true}, {Recursive: true, Deleted: true}}
		for _, p := range prefixes {
			checkList(t, c, objects, p, ListOptions{})
			checkList(t, c, objects, p, others[rng.IntN(len(others))])
		}
	}
}
