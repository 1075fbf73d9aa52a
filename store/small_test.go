package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A batch past smallStage bytes keeps its small chunks in a staging file
// of tmp until commit; commit makes them rows and removes the file, abort
// removes it and leaves no row.
func TestSmallStagingFile(t *testing.T) {
	for _, commit := range []bool{true, false} {
		d := newTestDisk(t, DiskOptions{SmallMax: MaxStoredSize})
		b := d.NewBatch()
		var ids []ID
		var datas [][]byte
		for i := range 600 { // about 3 MiB of incompressible 5 KB chunks
			data, id := chunk(uint64(1000+i), 5000, false)
			mustAdd(t, b, id, data)
			ids, datas = append(ids, id), append(datas, data)
		}
		staged, _ := filepath.Glob(filepath.Join(d.tmp, tmpPrefix+"small-*"))
		if len(staged) != 1 {
			t.Fatalf("%d staging files before commit, want 1", len(staged))
		}
		for _, id := range ids[:3] {
			wantAbsent(t, d, id)
		}
		if commit {
			mustCommit(t, b)
			for i, id := range ids {
				wantChunk(t, d, id, datas[i])
			}
		} else {
			b.Abort()
			for _, id := range ids {
				wantAbsent(t, d, id)
			}
		}
		if ents, _ := os.ReadDir(d.tmp); len(ents) != 0 {
			t.Errorf("commit %v: tmp holds %d files afterwards", commit, len(ents))
		}
		b.Abort()
	}
}

// A staging write that fails fails the batch for good: no later commit
// succeeds without the chunks it held.
func TestSmallStagingFailureSticks(t *testing.T) {
	d := newTestDisk(t, DiskOptions{SmallMax: MaxStoredSize})
	b := d.NewBatch()
	// The staging file's directory is gone: creating it fails.
	os.RemoveAll(d.tmp)
	var failed error
	for i := range 600 {
		data, id := chunk(uint64(3000+i), 5000, false)
		if _, err := b.Add(t.Context(), id, data); err != nil {
			failed = err
			break
		}
	}
	if failed == nil {
		t.Fatal("no Add failed without a tmp directory")
	}
	if err := b.Commit(t.Context()); err == nil {
		t.Fatal("Commit succeeded after a failed staging write")
	}
	b.Abort()
}

// A chunk can be a row and a file at once (a row from when small-chunk-max
// was higher, a file written since). Get reads the row first; a row that
// does not verify does not hide the file, and with no file its integrity
// error is what Get reports.
func TestSmallBadRowDoesNotHideFile(t *testing.T) {
	root := t.TempDir()
	data, id := chunk(77, 3000, false)
	rows := openTestDisk(t, root, DiskOptions{SmallMax: MaxStoredSize})
	put(t, rows, data)
	w, _, err := rows.small.dbs(false)
	if err != nil {
		t.Fatal(err)
	}
	// The same length, other bytes: decodes, and fails verification.
	if res, err := w.Exec(`UPDATE chunks SET data = substr(data, 1, 12) || zeroblob(length(data) - 12) WHERE hash = ?`, id[:]); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("damaged %d rows, want 1", n)
	}
	if _, err := rows.Get(t.Context(), id, nil); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("Get of a damaged row with no file: %v, want an integrity error", err)
	}
	files := openTestDisk(t, root, DiskOptions{SmallMax: -1})
	put(t, files, data)
	if _, err := os.Stat(files.Path(id)); err != nil {
		t.Fatalf("no chunk file written: %v", err)
	}
	wantChunk(t, rows, id, data)
}
