package catalog

import (
	"context"
	"fmt"

	"github.com/loftstore/loft/names"
)

// DeleteMissing gives every live object below prefix that keep does not
// report a tombstone: what a mirror put does with the objects its tree no
// longer has. It returns how many it deleted.
func (tx *Tx) DeleteMissing(ctx context.Context, prefix names.Prefix, keep func(name string) bool) (int64, error) {
	lo := prefix.Lead()
	hi := prefixEnd(lo)
	rows, err := tx.QueryContext(ctx, `SELECT name FROM objects WHERE live = 1 AND name >= ?1 AND (?2 = '' OR name < ?2)
		ORDER BY name`, lo, hi)
	if err != nil {
		return 0, err
	}
	var gone []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return 0, err
		}
		if !keep(name) {
			gone = append(gone, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, name := range gone {
		n, err := names.Parse(name)
		if err != nil {
			return 0, fmt.Errorf("delete %q: %w", name, err)
		}
		if _, err := tx.Delete(ctx, n); err != nil {
			return 0, err
		}
	}
	return int64(len(gone)), nil
}

// FileStat is how a file looked to a put: what the files cache compares.
type FileStat struct {
	Size  int64
	MTime int64 // Unix nanoseconds
	CTime int64
	Ino   uint64
	Dev   uint64
}

// CachedFile returns the head version of name when the files cache says a
// put read a file that looked exactly like st and left that version as the
// head, which is still the head and still live: the file need not be read
// again. ok is false otherwise.
func (c *Catalog) CachedFile(ctx context.Context, name names.Name, st FileStat) (v Version, ok bool, err error) {
	fc, err := c.CachedFiles(ctx, []names.Name{name})
	if err != nil {
		return Version{}, false, err
	}
	v, ok = fc.Hit(name, st)
	return v, ok, nil
}

// FilesCache is what the files cache holds for some names: for each, how
// the file looked and the version a put made of it, when that version is
// still the live head.
type FilesCache map[string]cachedFile

type cachedFile struct {
	st FileStat
	v  Version
}

// Hit returns the version of name when the file looked exactly like st.
func (fc FilesCache) Hit(name names.Name, st FileStat) (Version, bool) {
	e, ok := fc[name.String()]
	if !ok || e.st != st {
		return Version{}, false
	}
	return e.v, true
}

// CachedFiles reads the files cache for ns, a query per hundred names: a
// put of a tree asks for a batch of files at a time, not one query each.
func (c *Catalog) CachedFiles(ctx context.Context, ns []names.Name) (FilesCache, error) {
	q := `SELECT f.size, f.mtime, f.ctime, f.ino, f.dev, ` + versionCols + ` FROM files_cache f
		JOIN objects o ON o.name = f.name AND o.head = f.num AND o.live = 1
		JOIN versions v ON v.object_id = o.id AND v.num = o.head
		WHERE f.name IN ` + inList + ` AND v.kind = ''`
	fc := make(FilesCache, len(ns))
	err := inBatches(ns, nameArg, "", func(_ []names.Name, args []any) error {
		rows, err := c.r.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e cachedFile
			var ino, dev int64
			e.v, err = scanVersion(withPrefix{rows, []any{&e.st.Size, &e.st.MTime, &e.st.CTime, &ino, &dev}})
			if err != nil {
				return err
			}
			e.st.Ino, e.st.Dev = uint64(ino), uint64(dev)
			fc[e.v.Name] = e
		}
		return rows.Err()
	})
	if err != nil {
		return nil, classify(err)
	}
	return fc, nil
}

// HasCachedFiles reports whether the files cache holds anything: a put
// into a repository that never cached a file skips the lookups.
func (c *Catalog) HasCachedFiles(ctx context.Context) (bool, error) {
	var n int
	err := c.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM files_cache)`).Scan(&n)
	return n == 1, classify(err)
}

// CachedStat is a file's entry for the files cache: its name, how it
// looked, and the version a put made (or found) its head.
type CachedStat struct {
	Name names.Name
	Stat FileStat
	Num  int64
}

// CacheFiles records entries in the files cache, as CacheFile does each,
// a hundred a statement.
func (tx *Tx) CacheFiles(ctx context.Context, es []CachedStat) error {
	for start := 0; start < len(es); start += inBatch {
		var rows rowsInsert
		for _, e := range es[start:min(start+inBatch, len(es))] {
			rows.add(e.Name.String(), e.Stat.Size, e.Stat.MTime, e.Stat.CTime, int64(e.Stat.Ino), int64(e.Stat.Dev), e.Num)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO files_cache(name, size, mtime, ctime, ino, dev, num) VALUES `+rows.values()+`
			ON CONFLICT(name) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, ctime = excluded.ctime,
				ino = excluded.ino, dev = excluded.dev, num = excluded.num`, rows.args...)
		if err != nil {
			return fmt.Errorf("files cache: %w", err)
		}
	}
	return nil
}

// CacheFile records in the files cache that the file behind name looked
// like st when a put made (or found) version num its head.
func (tx *Tx) CacheFile(ctx context.Context, name names.Name, st FileStat, num int64) error {
	return tx.CacheFiles(ctx, []CachedStat{{Name: name, Stat: st, Num: num}})
}
