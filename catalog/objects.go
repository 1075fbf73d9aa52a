package catalog

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// Digest is a whole-object SHA-256.
type Digest [32]byte

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes the digest as hex; the zero digest (tombstones) as "".
func (d Digest) MarshalText() ([]byte, error) {
	if d == (Digest{}) {
		return []byte{}, nil
	}
	return []byte(d.String()), nil
}

// UnmarshalText decodes MarshalText's form.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Digest{}
		return nil
	}
	if len(b) != 2*len(d) {
		return fmt.Errorf("digest %q: want %d hex digits", b, 2*len(d))
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// Version is one version of an object.
type Version struct {
	Name         string    `json:"name"`
	Num          int64     `json:"version"`
	Deleted      bool      `json:"deleted,omitempty"`
	Size         int64     `json:"size"`
	Mode         uint32    `json:"mode"`
	MTime        time.Time `json:"mtime"`
	ContentType  string    `json:"content_type,omitempty"`
	SHA256       Digest    `json:"sha256"`
	Created      time.Time `json:"created"`
	Origin       string    `json:"origin"`
	RestoredFrom int64     `json:"restored_from,omitempty"`
	Chunks       int64     `json:"chunks"`
	Kind         Kind      `json:"kind,omitempty"`
	Target       string    `json:"target,omitempty"` // a symbolic link's
	Meta         Meta      `json:"meta,omitzero"`

	id int64
}

// Kind is what a version is: a file (the zero value), a directory or a
// symbolic link. Only mirror puts store directories and links.
type Kind string

const (
	KindFile    Kind = ""
	KindDir     Kind = "dir"
	KindSymlink Kind = "symlink"
)

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool { return k == KindFile || k == KindDir || k == KindSymlink }

// MaxTarget bounds a symbolic link's target (Linux's PATH_MAX).
const MaxTarget = 4096

// checkEntry refuses a directory or link that carries content, a link
// without a target or with one no file system holds, and a target on
// anything else.
func checkEntry(kind Kind, target string, size, chunks int64) error {
	switch {
	case !kind.Valid():
		return fmt.Errorf("unknown kind %q", kind)
	case kind != KindFile && (size != 0 || chunks != 0):
		return fmt.Errorf("a %s with content", kind)
	case kind == KindSymlink && (target == "" || len(target) > MaxTarget || strings.IndexByte(target, 0) >= 0):
		return fmt.Errorf("symbolic link target of %d bytes: empty, over %d or with a NUL", len(target), MaxTarget)
	case kind != KindSymlink && target != "":
		return fmt.Errorf("a %q with a link target", kind)
	}
	return nil
}

// MaxVersionChunks bounds the chunk list of one version (4 TiB of 1 MiB
// chunks): what a node holds in memory while a version arrives.
const MaxVersionChunks = 1 << 22

// ChunkRef is one chunk of a version, in order.
type ChunkRef struct {
	ID     store.ID `json:"id"`
	Plain  int64    `json:"plain"`
	Stored int64    `json:"stored"`
}

// Check refuses sizes no chunk has: they size buffers and read budgets.
func (r ChunkRef) Check() error {
	if r.Plain < 0 || r.Plain > store.MaxChunkSize || r.Stored <= 0 || r.Stored > store.MaxStoredSize {
		return fault.E(fault.Invalid, "chunk %s: plain size %d, stored size %d: out of bounds", r.ID, r.Plain, r.Stored)
	}
	return nil
}

const versionCols = `o.name, v.id, v.num, v.deleted, v.size, v.mode, v.mtime, v.content_type,
	v.sha256, v.created, v.origin, coalesce(v.restored_from, 0),
	(SELECT count(*) FROM version_chunks vc WHERE vc.version_id = v.id), v.kind, v.target, v.meta`

type scanner interface{ Scan(dest ...any) error }

func scanVersion(s scanner) (Version, error) {
	var v Version
	var mtime, created int64
	var sum []byte
	var meta string
	err := s.Scan(&v.Name, &v.id, &v.Num, &v.Deleted, &v.Size, &v.Mode, &mtime, &v.ContentType,
		&sum, &created, &v.Origin, &v.RestoredFrom, &v.Chunks, &v.Kind, &v.Target, &meta)
	if err != nil {
		return v, err
	}
	return v, v.finish(mtime, created, sum, meta)
}

// finish fills in the fields of a scanned version that are stored in
// another form.
func (v *Version) finish(mtime, created int64, sum []byte, meta string) error {
	copy(v.SHA256[:], sum)
	v.MTime, v.Created = mtimeFrom(mtime, v.Deleted), fromNanos(created)
	var err error
	if v.Meta, err = ParseMeta(meta); err != nil {
		return fmt.Errorf("%w: %s version %d: %w", ErrCorrupt, v.Name, v.Num, err)
	}
	return nil
}

// mtimeFrom reads a stored mtime. Modification times are kept as exact
// nanoseconds, the Unix epoch included (reproducible builds use it);
// tombstones have none.
func mtimeFrom(n int64, deleted bool) time.Time {
	if deleted {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// NewVersion is the content of a version to add.
type NewVersion struct {
	Name        names.Name
	Size        int64
	Mode        uint32
	MTime       time.Time
	ContentType string
	SHA256      Digest
	Chunks      []ChunkRef
	Kind        Kind
	Target      string // a symbolic link's
	Meta        Meta
	// Shared says the chunks are another version's, referenced already:
	// the version takes references on them without saying this node
	// holds their files (a copy of a version whose chunks are on peers).
	// Without it, AddVersion records the chunks as held here, as the put
	// that wrote them would.
	Shared bool
}

// Added reports what AddVersion did.
type Added struct {
	Version Version
	// Unchanged is set when the newest version already had this content,
	// mode and mtime; no version was added.
	Unchanged bool
	// Revived lists chunks that had no row, or no references, before this
	// transaction. Their files are not protected by any other version: the
	// caller must make sure they exist before it lets the transaction commit.
	Revived []store.ID
	// Pruned lists the version numbers removed to keep the configured count.
	Pruned []int64
}

// AddVersion adds a version of nv.Name pointing at nv.Chunks and takes one
// reference on each chunk. Older versions beyond the keep count are pruned
// in the same transaction.
func (tx *Tx) AddVersion(ctx context.Context, nv NewVersion) (Added, error) {
	if nv.Name.IsZero() {
		return Added{}, fmt.Errorf("add version: %w", names.ErrBad)
	}
	name := nv.Name.String()
	obj, head, front, hv, err := tx.objectHead(ctx, name)
	if err != nil {
		return Added{}, err
	}
	if head > 0 {
		if hv.id == 0 {
			return Added{}, fmt.Errorf("%s version %d: %w", name, head, ErrNotFound)
		}
		if !hv.Deleted && hv.SHA256 == nv.SHA256 && hv.Size == nv.Size && hv.Mode == nv.Mode &&
			hv.MTime.UnixNano() == nv.MTime.UnixNano() && hv.ContentType == nv.ContentType &&
			hv.Kind == nv.Kind && hv.Target == nv.Target && hv.Meta.Encode() == nv.Meta.Encode() {
			return Added{Version: hv, Unchanged: true}, nil
		}
	}
	if err := nv.check(); err != nil {
		return Added{}, err
	}
	num := head + 1
	seq, err := tx.logChange(ctx, "put", name, num, "", nv.putHash(nanos(tx.now)))
	if err != nil {
		return Added{}, err
	}
	var added Added
	ids, revived, err := tx.reference(ctx, nv.Chunks, nv.Shared)
	if err != nil {
		return Added{}, err
	}
	added.Revived = revived
	vv, err := tx.localWrite(ctx, &obj, nv.Name, front, false, num)
	if err != nil {
		return Added{}, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, size, mode, mtime, content_type, sha256, created, origin, origin_seq, vv, kind, target, seq, meta)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		obj, num, nv.Size, nv.Mode, nv.MTime.UnixNano(), nv.ContentType, nv.SHA256[:], nanos(tx.now), tx.c.origin, tx.originSeq, vv, nv.Kind, nv.Target, seq, nv.Meta.Encode())
	if err != nil {
		return Added{}, fmt.Errorf("add version: %w", err)
	}
	vid, _ := res.LastInsertId()
	if err := tx.insertVersionChunks(ctx, vid, ids); err != nil {
		return Added{}, err
	}
	if added.Pruned, err = tx.prune(ctx, obj, num, seq); err != nil {
		return Added{}, err
	}
	added.Version = tx.added(nv, num, vid)
	return added, nil
}

// reference takes one reference on each chunk of a list (a version's, a
// part's) and returns the chunks' row ids in order, and the chunks that
// had no reference before (see Added.Revived), whose replicas it forgets.
// With shared the chunks are another version's: the rows say held as
// they did.
func (tx *Tx) reference(ctx context.Context, chunks []ChunkRef, shared bool) ([]int64, []store.ID, error) {
	ids := make([]int64, len(chunks))
	var revived []store.ID
	seen := make(store.IDSet)
	for i, ref := range chunks {
		var refs int64
		err := tx.QueryRowContext(ctx, `INSERT INTO chunks(hash, refs, plain_size, stored_size)
			VALUES (?1, 1, ?2, ?3)
			ON CONFLICT(hash) DO UPDATE SET refs = refs + 1, held = CASE WHEN ?4 THEN held ELSE 1 END, zero_at = NULL, zero_seq = NULL
			RETURNING id, refs`, ref.ID[:], ref.Plain, ref.Stored, shared).Scan(&ids[i], &refs)
		if err != nil {
			return nil, nil, fmt.Errorf("reference chunk %s: %w", ref.ID, err)
		}
		if refs == 1 && !seen.Has(ref.ID) {
			revived = append(revived, ref.ID)
			if err := tx.forgetReplicas(ctx, ids[i]); err != nil {
				return nil, nil, err
			}
		}
		seen.Add(ref.ID)
	}
	return ids, revived, nil
}

// check reports what makes nv no version to add: an entry its kind cannot
// have, a chunk reference out of bounds.
func (nv NewVersion) check() error {
	if err := checkEntry(nv.Kind, nv.Target, nv.Size, int64(len(nv.Chunks))); err != nil {
		return fault.E(fault.Invalid, "add %s: %w", nv.Name, err)
	}
	if err := nv.Meta.Check(); err != nil {
		return fmt.Errorf("add %s: %w", nv.Name, err)
	}
	if err := nv.Meta.checkSize(nv.Size); err != nil {
		return fmt.Errorf("add %s: %w", nv.Name, err)
	}
	for _, ref := range nv.Chunks {
		if err := ref.Check(); err != nil {
			return fmt.Errorf("add %s: %w", nv.Name, err)
		}
	}
	return nil
}

// putHash is the content hash of the change that adds nv, created at
// created (Unix nanoseconds).
func (nv NewVersion) putHash(created int64) []byte {
	return contentHash("put", nv.Name.String(), false, nv.Size, nv.Mode, nv.MTime.UnixNano(), nv.ContentType, nv.SHA256[:], created, nv.Kind, nv.Target, nv.Meta.Encode())
}

// added is the Version this transaction adds as number num of nv, row vid.
func (tx *Tx) added(nv NewVersion, num, vid int64) Version {
	return Version{Name: nv.Name.String(), Num: num, Size: nv.Size, Mode: nv.Mode, MTime: time.Unix(0, nv.MTime.UnixNano()),
		ContentType: nv.ContentType, SHA256: nv.SHA256, Created: tx.now, Origin: tx.c.origin,
		Chunks: int64(len(nv.Chunks)), Kind: nv.Kind, Target: nv.Target, Meta: nv.Meta, id: vid}
}

// insertVersionChunks writes the ordered chunk list, many rows a statement.
func (tx *Tx) insertVersionChunks(ctx context.Context, vid int64, ids []int64) error {
	const perStmt = 200
	for start := 0; start < len(ids); start += perStmt {
		var rows rowsInsert
		for i := start; i < min(start+perStmt, len(ids)); i++ {
			rows.add(vid, i, ids[i])
		}
		if err := rows.exec(ctx, tx, `INSERT INTO version_chunks(version_id, idx, chunk_id) VALUES `); err != nil {
			return fmt.Errorf("add version chunks: %w", err)
		}
	}
	return nil
}

// object returns the object's row id and head version number, creating the
// object when create is set. A missing object is ErrNotFound.
func (tx *Tx) object(ctx context.Context, name string, create bool) (id, head int64, err error) {
	delete(tx.heads, name) // its caller changes it
	err = tx.QueryRowContext(ctx, `SELECT id, head FROM objects WHERE name = ?`, name).Scan(&id, &head)
	if errors.Is(err, sql.ErrNoRows) {
		if !create {
			return 0, 0, fmt.Errorf("object %s: %w", name, ErrNotFound)
		}
		delete(tx.absent, name)
		res, err := tx.ExecContext(ctx, `INSERT INTO objects(name, head, live) VALUES (?, 0, 0)`, name)
		if err != nil {
			return 0, 0, fmt.Errorf("add object %s: %w", name, err)
		}
		id, _ = res.LastInsertId()
		return id, 0, nil
	}
	return id, head, err
}

func (tx *Tx) setHead(ctx context.Context, obj, num int64, live bool) error {
	_, err := tx.ExecContext(ctx, `UPDATE objects SET head = ?, live = ? WHERE id = ?`, num, live, obj)
	return err
}

func (tx *Tx) version(ctx context.Context, name string, num int64) (Version, error) {
	return version(ctx, tx, name, num)
}

func version(ctx context.Context, q querier, name string, num int64) (Version, error) {
	row := q.QueryRowContext(ctx, `SELECT `+versionCols+` FROM objects o JOIN versions v ON v.object_id = o.id
		WHERE o.name = ? AND v.num = ?`, name, num)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%s version %d: %w", name, num, ErrNotFound)
	}
	return v, err
}

// prune removes the oldest versions of obj, whose newest is head, beyond
// the keep count and drops their references. Chunks that lose their last
// reference are stamped with the time and with seq, the change that caused it.
func (tx *Tx) prune(ctx context.Context, obj, head, seq int64) ([]int64, error) {
	keep, err := tx.keepVersions(ctx)
	if err != nil {
		return nil, err
	}
	if head <= int64(keep) {
		return nil, nil // numbers start at 1, so there are at most head versions
	}
	// A version a snapshot sees is kept: the snapshot's change lies between
	// the version's and the next one's. (The newest version is never a
	// candidate, so there is a next one.)
	rows, err := tx.QueryContext(ctx, `SELECT v.id, v.num FROM
		(SELECT id, object_id, num, seq FROM versions WHERE object_id = ?1 ORDER BY num DESC LIMIT -1 OFFSET ?2) AS v,
		objects o
		WHERE o.id = ?1 AND NOT `+seenBySnapshot+`
		ORDER BY v.num DESC`, obj, keep)
	if err != nil {
		return nil, err
	}
	var vids, nums []int64
	for rows.Next() {
		var vid, num int64
		if err := rows.Scan(&vid, &num); err != nil {
			rows.Close()
			return nil, err
		}
		vids, nums = append(vids, vid), append(nums, num)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, vid := range vids {
		if err := tx.dropVersion(ctx, vid, seq); err != nil {
			return nil, err
		}
	}
	return nums, nil
}

// dropVersion deletes a version and the references it held.
func (tx *Tx) dropVersion(ctx context.Context, vid, seq int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE chunks SET
			refs = refs - vc.n,
			zero_at = CASE WHEN refs = vc.n THEN ? ELSE zero_at END,
			zero_seq = CASE WHEN refs = vc.n THEN ? ELSE zero_seq END
		FROM (SELECT chunk_id, count(*) AS n FROM version_chunks WHERE version_id = ? GROUP BY chunk_id) AS vc
		WHERE chunks.id = vc.chunk_id`, nanos(tx.now), seq, vid)
	if err != nil {
		return fmt.Errorf("drop version references: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM versions WHERE id = ?`, vid); err != nil {
		return fmt.Errorf("drop version: %w", err)
	}
	return nil
}

// Delete adds a tombstone version to a live object. The older versions stay,
// so the delete can be undone with Restore.
func (tx *Tx) Delete(ctx context.Context, n names.Name) (Version, error) {
	name := n.String()
	obj, head, front, hv, err := tx.objectHead(ctx, name)
	if err != nil {
		return Version{}, err
	}
	if obj == 0 {
		return Version{}, fmt.Errorf("object %s: %w", name, ErrNotFound)
	}
	if hv.id == 0 {
		return Version{}, fmt.Errorf("%s version %d: %w", name, head, ErrNotFound)
	}
	if hv.Deleted {
		return Version{}, fmt.Errorf("object %s: %w", name, ErrDeleted)
	}
	return tx.tombstone(ctx, n, obj, head, front)
}

// tombstone adds a tombstone version to object obj (named n, whose head
// is version head and frontier front), deleted already or not.
func (tx *Tx) tombstone(ctx context.Context, n names.Name, obj, head int64, front []sibling) (Version, error) {
	name := n.String()
	num := head + 1
	seq, err := tx.logChange(ctx, "delete", name, num, "", contentHash("delete", name, true, 0, 0, 0, "", nil, nanos(tx.now), "", "", ""))
	if err != nil {
		return Version{}, err
	}
	vv, err := tx.localWrite(ctx, &obj, n, front, true, num)
	if err != nil {
		return Version{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, deleted, created, origin, origin_seq, vv)
		VALUES (?, ?, 1, ?, ?, ?, ?)`, obj, num, nanos(tx.now), tx.c.origin, tx.originSeq, vv); err != nil {
		return Version{}, fmt.Errorf("add tombstone: %w", err)
	}
	if _, err := tx.prune(ctx, obj, num, seq); err != nil {
		return Version{}, err
	}
	return tx.version(ctx, name, num)
}

// Restore makes version num of name the newest again: a new version that
// points at the same chunks, so no data is copied. num 0 means the newest
// version that is not a tombstone (an undelete). Restoring the version that
// is already the newest changes nothing: it is returned with added false.
func (tx *Tx) Restore(ctx context.Context, n names.Name, num int64) (v Version, added bool, err error) {
	name := n.String()
	obj, head, front, _, err := tx.objectHead(ctx, name)
	if err != nil {
		return Version{}, false, err
	}
	if obj == 0 {
		return Version{}, false, fmt.Errorf("object %s: %w", name, ErrNotFound)
	}
	if num == 0 {
		err := tx.QueryRowContext(ctx, `SELECT max(num) FROM versions WHERE object_id = ? AND deleted = 0`, obj).Scan(&num)
		if err != nil || num == 0 {
			return Version{}, false, fmt.Errorf("object %s has no version to restore: %w", name, ErrNotFound)
		}
	}
	src, err := tx.version(ctx, name, num)
	if err != nil {
		return Version{}, false, err
	}
	if src.Deleted {
		return Version{}, false, fmt.Errorf("%s version %d is a deletion, not content: %w", name, num, ErrDeleted)
	}
	if num == head {
		return src, false, nil
	}
	newNum := head + 1
	seq, err := tx.logChange(ctx, "restore", name, newNum, fmt.Sprintf(`{"from":%d}`, num),
		contentHash("restore", name, false, src.Size, src.Mode, src.MTime.UnixNano(), src.ContentType, src.SHA256[:], nanos(tx.now), src.Kind, src.Target, src.Meta.Encode()))
	if err != nil {
		return Version{}, false, err
	}
	vv, err := tx.localWrite(ctx, &obj, n, front, false, newNum)
	if err != nil {
		return Version{}, false, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, size, mode, mtime, content_type, sha256, created, origin, restored_from, origin_seq, vv, kind, target, meta)
		SELECT object_id, ?, size, mode, mtime, content_type, sha256, ?, ?, num, ?, ?, kind, target, meta FROM versions WHERE id = ?`,
		newNum, nanos(tx.now), tx.c.origin, tx.originSeq, vv, src.id)
	if err != nil {
		return Version{}, false, fmt.Errorf("restore version: %w", err)
	}
	vid, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `INSERT INTO version_chunks(version_id, idx, chunk_id)
		SELECT ?, idx, chunk_id FROM version_chunks WHERE version_id = ?`, vid, src.id); err != nil {
		return Version{}, false, fmt.Errorf("restore version chunks: %w", err)
	}
	// The source version still holds its references, so every chunk here has
	// refs > 0 already: nothing is revived.
	if _, err := tx.ExecContext(ctx, `UPDATE chunks SET refs = refs + vc.n
		FROM (SELECT chunk_id, count(*) AS n FROM version_chunks WHERE version_id = ? GROUP BY chunk_id) AS vc
		WHERE chunks.id = vc.chunk_id`, src.id); err != nil {
		return Version{}, false, fmt.Errorf("restore references: %w", err)
	}
	if _, err := tx.prune(ctx, obj, newNum, seq); err != nil {
		return Version{}, false, err
	}
	v, err = tx.version(ctx, name, newNum)
	return v, err == nil, err
}

// Head returns the newest version of name, which may be a tombstone.
func (c *Catalog) Head(ctx context.Context, name names.Name) (Version, error) {
	return c.head(ctx, name.String())
}

// HeadAt returns the version of name a snapshot at change seq sees (seq 0:
// the newest), which may be a tombstone.
func (c *Catalog) HeadAt(ctx context.Context, name names.Name, seq int64) (Version, error) {
	return c.headAt(ctx, name.String(), seq)
}

func (c *Catalog) headAt(ctx context.Context, name string, seq int64) (Version, error) {
	if seq == 0 {
		return c.head(ctx, name)
	}
	row := c.r.QueryRowContext(ctx, `SELECT `+versionCols+` FROM objects o JOIN versions v ON v.object_id = o.id
		WHERE o.name = ? AND v.seq <= ? ORDER BY v.num DESC LIMIT 1`, name, seq)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("object %s: %w at that point", name, ErrNotFound)
	}
	return v, classify(err)
}

func (c *Catalog) head(ctx context.Context, name string) (Version, error) {
	row := c.r.QueryRowContext(ctx, `SELECT `+versionCols+` FROM objects o JOIN versions v
		ON v.object_id = o.id AND v.num = o.head WHERE o.name = ?`, name)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("object %s: %w", name, ErrNotFound)
	}
	return v, classify(err)
}

// Version returns version num of name.
func (c *Catalog) Version(ctx context.Context, name names.Name, num int64) (Version, error) {
	v, err := version(ctx, c.r, name.String(), num)
	return v, classify(err)
}

// Versions returns the versions of name, newest first.
func (c *Catalog) Versions(ctx context.Context, name names.Name) ([]Version, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT `+versionCols+` FROM objects o JOIN versions v ON v.object_id = o.id
		WHERE o.name = ? ORDER BY v.num DESC`, name.String())
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("object %s: %w", name, ErrNotFound)
	}
	return out, nil
}

// ListedChunks is the most chunks a version may have for ChunkLists to
// read its list; a larger one is read by Chunks, a page at a time.
const ListedChunks = 16

// ChunkLists reads the chunk lists of versions vs (as List, Walk or Head
// returned them) in one query per hundred versions: a restore of a tree
// asks for a batch of files at once, not once a file. The list of a
// version with more than ListedChunks chunks, or whose rows do not match
// its count (pruned meanwhile, or not from this catalog), is nil: the
// caller reads it with Chunks, which reports such a version as it would.
func (c *Catalog) ChunkLists(ctx context.Context, vs []Version) ([][]ChunkRef, error) {
	out := make([][]ChunkRef, len(vs))
	at := make(map[int64]int, len(vs))
	bad := make(map[int]bool)
	var ids []int64
	for i, v := range vs {
		if v.id == 0 || v.Chunks > ListedChunks || v.Deleted {
			continue
		}
		if v.Chunks == 0 {
			out[i] = []ChunkRef{}
			continue
		}
		at[v.id] = i
		ids = append(ids, v.id)
	}
	q := `SELECT vc.version_id, vc.idx, c.hash, c.plain_size, c.stored_size
		FROM version_chunks vc JOIN chunks c ON c.id = vc.chunk_id
		WHERE vc.version_id IN ` + inList + ` ORDER BY vc.version_id, vc.idx`
	// Short queries, as Chunks' pages: not cancellable, checked before each.
	id := func(v int64) any { return v }
	err := inBatches(ids, id, int64(0) /* no version has id 0 */, func(_ []int64, args []any) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := c.r.QueryContext(context.WithoutCancel(ctx), q, args...)
		if err != nil {
			return classify(err)
		}
		defer rows.Close()
		for rows.Next() {
			var vid, idx int64
			var h []byte
			var ref ChunkRef
			if err := rows.Scan(&vid, &idx, &h, &ref.Plain, &ref.Stored); err != nil {
				return classify(err)
			}
			i, ok := at[vid]
			if !ok {
				continue
			}
			if idx != int64(len(out[i])) || len(h) != store.IDSize {
				bad[i] = true // Chunks reads it again, and says what is wrong
				continue
			}
			copy(ref.ID[:], h)
			out[i] = append(out[i], ref)
		}
		return classify(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	for _, i := range at {
		if bad[i] || int64(len(out[i])) != vs[i].Chunks {
			out[i] = nil
		}
	}
	return out, nil
}

// chunkPage is how many chunk references Chunks reads per query, which
// bounds its memory whatever the size of the object.
const chunkPage = 512

// Chunks calls fn with the chunks of v in order, starting at index from.
//
// Each query is short (one page): it runs under a context that cannot be
// cancelled, after a check of ctx, so that the driver spends no goroutine
// on watching it; a restore asks once for every file.
func (c *Catalog) Chunks(ctx context.Context, v Version, from int64, fn func(idx int64, ref ChunkRef) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := c.r.QueryContext(context.WithoutCancel(ctx), `SELECT vc.idx, c.hash, c.plain_size, c.stored_size
			FROM version_chunks vc JOIN chunks c ON c.id = vc.chunk_id
			WHERE vc.version_id = ? AND vc.idx >= ? ORDER BY vc.idx LIMIT ?`, v.id, from, chunkPage)
		if err != nil {
			return classify(err)
		}
		type item struct {
			idx int64
			ref ChunkRef
		}
		var page []item // most objects have one chunk: no page-sized allocation up front
		for rows.Next() {
			var it item
			var h []byte
			if err := rows.Scan(&it.idx, &h, &it.ref.Plain, &it.ref.Stored); err != nil {
				rows.Close()
				return classify(err)
			}
			copy(it.ref.ID[:], h)
			page = append(page, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify(err)
		}
		for _, it := range page {
			if err := fn(it.idx, it.ref); err != nil {
				return err
			}
		}
		if len(page) < chunkPage {
			return nil
		}
		from = page[len(page)-1].idx + 1
	}
}

// Entry is one line of a listing: an object's newest version, or a directory.
type Entry struct {
	Name     string  `json:"name"`
	Dir      bool    `json:"dir,omitempty"`
	Versions int64   `json:"versions,omitempty"`
	Head     Version `json:"head,omitzero"`
}

// ListOptions select what List returns.
type ListOptions struct {
	Recursive bool // every object below the prefix, not one level
	Deleted   bool // include objects whose newest version is a tombstone
	Below     bool // only what lies below the prefix, not an object it names
	// AtSeq, when set, lists the tree as it was at that change (a
	// snapshot's Seq): of each object, the newest version written here
	// at or before it.
	AtSeq int64
}

// List calls fn for the entries below prefix in name order. Without
// Recursive it returns one level, like ls: objects, and each directory once.
// A prefix that names an object lists that object too, unless Below is set.
// It skips over a directory's contents with one query per directory, so a
// listing of a large tree costs what is shown, not what is below it.
func (c *Catalog) List(ctx context.Context, prefix names.Prefix, opts ListOptions, fn func(Entry) error) error {
	p := prefix.String()
	if p != "" {
		// The prefix may name an object itself.
		// A stored directory is what is listed, not a line of its own.
		if v, err := c.headAt(ctx, p, opts.AtSeq); err == nil && (opts.Deleted || !v.Deleted) && !opts.Below &&
			(v.Kind != KindDir || v.Deleted) {
			n, err := c.versionCount(ctx, p)
			if err != nil {
				return err
			}
			if err := fn(Entry{Name: p, Versions: n, Head: v}); err != nil {
				return err
			}
		}
		p += "/"
	}
	lo, hi := p, prefixEnd(p)
	shownDir := ""
	const page = 256
	for {
		q := `SELECT ` + versionCols + `, (SELECT count(*) FROM versions x WHERE x.object_id = o.id)
			FROM objects o JOIN versions v ON v.object_id = o.id AND v.num = o.head
			WHERE o.name >= ?1 AND (?2 = '' OR o.name < ?2) AND (?3 OR o.live = 1)
			ORDER BY o.name LIMIT ?4`
		if opts.AtSeq > 0 {
			q = `SELECT ` + versionCols + `, (SELECT count(*) FROM versions x WHERE x.object_id = o.id)
			FROM objects o JOIN versions v ON v.object_id = o.id
				AND v.num = (SELECT max(x.num) FROM versions x WHERE x.object_id = o.id AND x.seq <= ?5)
			WHERE o.name >= ?1 AND (?2 = '' OR o.name < ?2) AND (?3 OR v.deleted = 0)
			ORDER BY o.name LIMIT ?4`
		}
		rows, err := c.r.QueryContext(ctx, q, lo, hi, opts.Deleted, page, opts.AtSeq)
		if err != nil {
			return classify(err)
		}
		var batch []Entry
		for rows.Next() {
			var e Entry
			var v Version
			var mtime, created int64
			var sum []byte
			var meta string
			err := rows.Scan(&v.Name, &v.id, &v.Num, &v.Deleted, &v.Size, &v.Mode, &mtime, &v.ContentType,
				&sum, &created, &v.Origin, &v.RestoredFrom, &v.Chunks, &v.Kind, &v.Target, &meta, &e.Versions)
			if err == nil {
				err = v.finish(mtime, created, sum, meta)
			}
			if err != nil {
				rows.Close()
				return classify(err)
			}
			e.Name, e.Head = v.Name, v
			batch = append(batch, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify(err)
		}
		for i, e := range batch {
			rest := e.Name[len(p):]
			if slash := strings.IndexByte(rest, '/'); slash >= 0 && !opts.Recursive {
				dir := p + rest[:slash+1]
				if dir != shownDir {
					if err := fn(Entry{Name: dir, Dir: true}); err != nil {
						return err
					}
				}
				lo = prefixEnd(dir) // skip the directory's contents
				if lo == "" {
					return nil
				}
				break
			}
			if !opts.Recursive && e.Head.Kind == KindDir && !e.Head.Deleted {
				// A stored directory is shown once, as the directory of
				// its contents would be (those sort after names such as
				// "a-b", so the name is remembered rather than skipped to).
				shownDir = e.Name + "/"
				e.Name, e.Dir = shownDir, true
			}
			if err := fn(e); err != nil {
				return err
			}
			lo = e.Name + "\x00"
			if i == len(batch)-1 && len(batch) < page {
				return nil
			}
		}
		if len(batch) == 0 {
			return nil
		}
	}
}

func (c *Catalog) versionCount(ctx context.Context, name string) (int64, error) {
	var n int64
	err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM versions v JOIN objects o ON o.id = v.object_id
		WHERE o.name = ?`, name).Scan(&n)
	return n, classify(err)
}

// Walk calls fn with the newest version of every live object that lies
// below prefix (the root: everything), in name order.
func (c *Catalog) Walk(ctx context.Context, prefix names.Prefix, fn func(Version) error) error {
	return c.List(ctx, prefix, ListOptions{Recursive: true, Below: true}, func(e Entry) error { return fn(e.Head) })
}

// MarshalJSON flattens a file entry's head version into the entry.
func (e Entry) MarshalJSON() ([]byte, error) {
	if e.Dir {
		return json.Marshal(struct {
			Name string `json:"name"`
			Dir  bool   `json:"dir"`
		}{e.Name, true})
	}
	type flat struct {
		Version
		Versions int64 `json:"versions"`
	}
	return json.Marshal(flat{e.Head, e.Versions})
}
