package catalog

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/loftstore/loft/names"
)

// TestAddVersionsAsOneByOne: AddVersions writes exactly the rows, ids and
// sequence numbers included, and returns exactly what AddVersion one by
// one does, over a mix it must split: new objects (more than one batch,
// chunks shared within a file, between files and with older versions, a
// chunk without references revived), existing objects, a name twice,
// directories and links.
func TestAddVersionsAsOneByOne(t *testing.T) {
	ctx := context.Background()
	var nvs []NewVersion
	for i := range 2*addBatch + 17 {
		v := nv(fmt.Sprintf("tree/f%03d", i), fmt.Sprintf("f%d", i), 100+i, 100+i%7, 1)
		if i%50 == 3 {
			v = NewVersion{Name: names.Must(fmt.Sprintf("tree/d%03d", i)), Kind: KindDir, Mode: 0o755, MTime: t0}
		}
		if i%50 == 4 {
			v = NewVersion{Name: names.Must(fmt.Sprintf("tree/l%03d", i)), Kind: KindSymlink, Target: "../x", Mode: 0o777, MTime: t0}
		}
		nvs = append(nvs, v)
		switch i {
		case 10:
			nvs = append(nvs, nv("old", "o2", 1, 5))       // an existing object, amid new ones
			nvs = append(nvs, nv("tree/f005", "again", 3)) // a name twice
		case 150:
			nvs = append(nvs, nv("old", "o1", 1, 2)) // back to what it held before this transaction
		}
	}
	nvs = append(nvs, nv("gone", "g2", 4)) // chunk 4 lost its last reference to a purge

	run := func(batch bool) ([]Added, string) {
		c, path := newCatalog(t, Options{})
		add(t, c, nv("old", "o1", 1, 2))
		add(t, c, nv("gone", "g1", 4))
		if err := c.Tx(ctx, func(tx *Tx) error {
			_, err := tx.Purge(ctx, names.Must("gone"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var added []Added
		err := c.Tx(ctx, func(tx *Tx) error {
			ns := make([]names.Name, len(nvs))
			for i, v := range nvs {
				ns[i] = v.Name
			}
			if err := tx.Prefetch(ctx, ns); err != nil {
				return err
			}
			if batch {
				var err error
				added, err = tx.AddVersions(ctx, nvs)
				return err
			}
			for _, v := range nvs {
				a, err := tx.AddVersion(ctx, v)
				if err != nil {
					return err
				}
				added = append(added, a)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return added, dumpTables(t, path)
	}
	oneByOne, want := run(false)
	batched, got := run(true)
	if got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("rows differ (%d and %d lines); first difference at line %d:\nbatched:    %s\none by one: %s", len(gl), len(wl), i, gl[i], wl[i])
			}
		}
		t.Fatalf("rows differ: %d lines batched, %d one by one", len(gl), len(wl))
	}
	if !reflect.DeepEqual(batched, oneByOne) {
		for i := range min(len(batched), len(oneByOne)) {
			if !reflect.DeepEqual(batched[i], oneByOne[i]) {
				t.Fatalf("result %d: batched %+v, one by one %+v", i, batched[i], oneByOne[i])
			}
		}
		t.Fatalf("%d results batched, %d one by one", len(batched), len(oneByOne))
	}
	revived := 0
	for _, a := range batched {
		revived += len(a.Revived)
	}
	if revived == 0 {
		t.Fatal("no chunk revived: the test lost its point")
	}
}

// dumpTables returns every row of the catalog's tables that versions touch,
// in a fixed order, as text.
func dumpTables(t *testing.T, path string) string {
	t.Helper()
	db := rawDB(t, path)
	var b strings.Builder
	for _, q := range []string{
		`SELECT * FROM changes ORDER BY seq`,
		`SELECT * FROM objects ORDER BY id`,
		`SELECT * FROM versions ORDER BY id`,
		`SELECT * FROM chunks ORDER BY id`,
		`SELECT * FROM version_chunks ORDER BY version_id, idx`,
		`SELECT * FROM replicas ORDER BY chunk_id, peer`,
		`SELECT * FROM sqlite_sequence ORDER BY name`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s: %v\n", q, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}
