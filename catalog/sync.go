package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/loftstore/loft/store"
)

// RemoteVersion is a version as nodes exchange it: its identity is the
// change that created it, (Origin, OriginSeq).
type RemoteVersion struct {
	Origin      string    `json:"origin"`
	OriginSeq   int64     `json:"origin_seq"`
	Op          string    `json:"op"`
	Name        string    `json:"name"`
	Deleted     bool      `json:"deleted,omitempty"`
	Size        int64     `json:"size"`
	Mode        uint32    `json:"mode"`
	MTime       time.Time `json:"mtime"`
	ContentType string    `json:"content_type,omitempty"`
	SHA256      Digest    `json:"sha256"`
	Created     time.Time `json:"created"`
	VV          VV        `json:"vv"`
	Chunks      int64     `json:"chunks"`
	// Gone is set when the version no longer exists where it was read
	// (pruned or collected): only its identity travels.
	Gone bool `json:"gone,omitempty"`
}

// Validate checks a version received from a peer.
func (rv RemoteVersion) Validate() error {
	switch {
	case rv.Origin == "" || rv.OriginSeq <= 0:
		return fmt.Errorf("change without an identity")
	case rv.Op != "put" && rv.Op != "delete" && rv.Op != "restore":
		return fmt.Errorf("change %s/%d: unknown operation %q", rv.Origin, rv.OriginSeq, rv.Op)
	case len(rv.VV) > MaxOrigins:
		return fmt.Errorf("change %s/%d: version vector too large", rv.Origin, rv.OriginSeq)
	case rv.Size < 0 || rv.Chunks < 0:
		return fmt.Errorf("change %s/%d: negative size", rv.Origin, rv.OriginSeq)
	}
	if _, err := store.ParsePeerID(rv.Origin); err != nil {
		return err
	}
	return ValidName(rv.Name)
}

// Exported is one change of this node's log, for a peer that pulls it.
type Exported struct {
	Seq     int64         `json:"seq"`
	Version RemoteVersion `json:"version"`
}

// ExportChanges returns up to limit object changes after seq after, in log
// order, each with its version as it is now. Changes by skipOrigin (the
// peer asking, which has them) are left out. last is the sequence to ask
// after next time; it moves past skipped changes too.
func (c *Catalog) ExportChanges(ctx context.Context, after int64, limit int, skipOrigin string) (out []Exported, last int64, err error) {
	last = after
	rows, err := c.r.QueryContext(ctx, `SELECT seq, origin, origin_seq, op, name FROM changes
		WHERE seq > ? AND op IN ('put', 'delete', 'restore') ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, 0, classify(err)
	}
	var page []Exported
	for rows.Next() {
		var e Exported
		if err := rows.Scan(&e.Seq, &e.Version.Origin, &e.Version.OriginSeq, &e.Version.Op, &e.Version.Name); err != nil {
			rows.Close()
			return nil, 0, classify(err)
		}
		last = e.Seq
		if e.Version.Origin != skipOrigin {
			page = append(page, e)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, classify(err)
	}
	for _, e := range page {
		v, vv, err := c.versionByIdentity(ctx, c.r, e.Version.Origin, e.Version.OriginSeq, e.Version.Name)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			e.Version.Gone = true
		case err != nil:
			return nil, 0, classify(err)
		default:
			rv := &e.Version
			rv.Deleted, rv.Size, rv.Mode, rv.MTime = v.Deleted, v.Size, v.Mode, v.MTime
			rv.ContentType, rv.SHA256, rv.Created, rv.VV, rv.Chunks = v.ContentType, v.SHA256, v.Created, vv, v.Chunks
		}
		out = append(out, e)
	}
	return out, last, nil
}

// versionByIdentity finds the version created by change (origin, seq),
// preferring one under name: a conflict copy shares its identity.
func (c *Catalog) versionByIdentity(ctx context.Context, q querier, origin string, seq int64, name string) (Version, VV, error) {
	var vvs string
	row := q.QueryRowContext(ctx, `SELECT `+versionCols+`, v.vv FROM objects o JOIN versions v ON v.object_id = o.id
		WHERE v.origin = ? AND v.origin_seq = ? ORDER BY (o.name = ?) DESC LIMIT 1`, origin, seq, name)
	var v Version
	var mtime, created int64
	var sum []byte
	err := row.Scan(&v.Name, &v.id, &v.Num, &v.Deleted, &v.Size, &v.Mode, &mtime, &v.ContentType,
		&sum, &created, &v.Origin, &v.RestoredFrom, &v.Chunks, &vvs)
	if err != nil {
		return v, nil, err
	}
	copy(v.SHA256[:], sum)
	v.MTime, v.Created = mtimeFrom(mtime, v.Deleted), fromNanos(created)
	vv, err := ParseVV(vvs)
	return v, vv, err
}

// MaxChunkPage caps the chunk references one page of a version carries.
const MaxChunkPage = 4096

// IdentityChunks returns up to limit chunk references, from index from, of
// the version created by change (origin, seq). A version that is gone is
// ErrNotFound.
func (c *Catalog) IdentityChunks(ctx context.Context, origin string, seq, from int64, limit int) ([]ChunkRef, error) {
	v, _, err := c.versionByIdentity(ctx, c.r, origin, seq, "")
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("version %s/%d: %w", origin, seq, ErrNotFound)
	}
	if err != nil {
		return nil, classify(err)
	}
	limit = min(limit, MaxChunkPage)
	var out []ChunkRef
	err = c.Chunks(ctx, v, from, func(idx int64, ref ChunkRef) error {
		if len(out) == limit {
			return errStop
		}
		out = append(out, ref)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

var errStop = errors.New("stop")

// Applied reports what ApplyRemote did.
type Applied struct {
	// Duplicate: the change was applied before (it came by another path).
	Duplicate bool
	// Name is where the version landed: its own name, or a conflict copy.
	Name string
	// Added is false when the version changed nothing visible: it was in
	// the object's past, a delete that lost to a concurrent write, or gone.
	Added bool
	// Conflict names the conflict copy this change created, if any.
	Conflict string
}

// ApplyRemote applies a version received from a peer. chunks is its whole
// chunk list (empty for tombstones and gone versions). Chunks new to this
// catalog get rows with held = 0: a peer holds them.
//
// The object's version vector decides: a version that follows everything
// applied to the object becomes its head; one in its past changes nothing;
// a concurrent one keeps both. Of two concurrent writes, the earlier
// (by creation time, then origin) keeps the name and the later goes to a
// conflict copy named after its node; a delete loses to a concurrent write,
// so no data disappears. Every node that receives the same versions, in any
// order, ends with the same heads and conflict copies.
func (tx *Tx) ApplyRemote(ctx context.Context, rv RemoteVersion, chunks []ChunkRef) (Applied, error) {
	if err := rv.Validate(); err != nil {
		return Applied{}, err
	}
	if !rv.Gone && !rv.Deleted && int64(len(chunks)) != rv.Chunks {
		return Applied{}, fmt.Errorf("version %s/%d of %s: %d chunk references, want %d", rv.Origin, rv.OriginSeq, rv.Name, len(chunks), rv.Chunks)
	}
	var seq int64
	err := tx.QueryRowContext(ctx, `INSERT INTO changes(origin, origin_seq, at, op, name, version, detail)
		VALUES (?, ?, ?, ?, ?, 0, 'applied') ON CONFLICT(origin, origin_seq) DO NOTHING RETURNING seq`,
		rv.Origin, rv.OriginSeq, nanos(tx.now), rv.Op, rv.Name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return Applied{Duplicate: true, Name: rv.Name}, nil
	}
	if err != nil {
		return Applied{}, fmt.Errorf("log change: %w", err)
	}
	tx.seq = seq
	ap := Applied{Name: rv.Name}
	if rv.Gone {
		return ap, nil
	}
	obj, head, err := tx.object(ctx, rv.Name, true)
	if err != nil {
		return Applied{}, err
	}
	clock, err := tx.objectVV(ctx, obj)
	if err != nil {
		return Applied{}, err
	}
	merged := clock.Merge(rv.VV)
	if head == 0 {
		return tx.appendRemote(ctx, obj, head, rv, chunks, merged, seq)
	}
	switch rv.VV.Compare(clock) {
	case After:
		return tx.appendRemote(ctx, obj, head, rv, chunks, merged, seq)
	case Equal, Before:
		return ap, nil
	}
	hv, err := tx.version(ctx, rv.Name, head)
	if err != nil {
		return Applied{}, err
	}
	switch {
	case rv.Deleted:
		// A delete never wins against a concurrent write; two deletes agree.
		return ap, tx.setObjectVV(ctx, obj, merged)
	case hv.Deleted:
		return tx.appendRemote(ctx, obj, head, rv, chunks, merged, seq)
	}
	if rv.Created.After(hv.Created) || (rv.Created.Equal(hv.Created) && rv.Origin > hv.Origin) {
		// The incoming version is the later one: it becomes the conflict copy.
		if err := tx.setObjectVV(ctx, obj, merged); err != nil {
			return Applied{}, err
		}
		cn := ConflictName(rv.Name, rv.Origin)
		cobj, chead, err := tx.object(ctx, cn, true)
		if err != nil {
			return Applied{}, err
		}
		cclock, err := tx.objectVV(ctx, cobj)
		if err != nil {
			return Applied{}, err
		}
		res, err := tx.appendRemote(ctx, cobj, chead, rv, chunks, cclock.Merge(rv.VV), seq)
		res.Conflict = cn
		return res, err
	}
	// The local head is the later one: it moves to a conflict copy, and the
	// incoming version takes the name.
	cn := ConflictName(hv.Name, hv.Origin)
	if err := tx.copyVersion(ctx, hv, cn); err != nil {
		return Applied{}, err
	}
	res, err := tx.appendRemote(ctx, obj, head, rv, chunks, merged, seq)
	res.Conflict = cn
	return res, err
}

// ConflictName is the name of the conflict copy of name written by node
// origin: the short node ID goes before the extension.
func ConflictName(name, origin string) string {
	short := origin
	if len(short) > 8 {
		short = short[:8]
	}
	dir, base := path.Split(name)
	ext := path.Ext(base)
	if ext == base || len(ext) > 16 {
		ext = ""
	}
	return dir + strings.TrimSuffix(base, ext) + ".conflict-" + short + ext
}

// appendRemote adds rv as the new head of obj and records the object clock.
func (tx *Tx) appendRemote(ctx context.Context, obj, head int64, rv RemoteVersion, chunks []ChunkRef, clock VV, seq int64) (Applied, error) {
	num := head + 1
	var sum []byte
	if !rv.Deleted {
		sum = rv.SHA256[:]
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, deleted, size, mode, mtime, content_type, sha256, created, origin, origin_seq, vv)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		obj, num, rv.Deleted, rv.Size, rv.Mode, rv.MTime.UnixNano(), rv.ContentType, sum, nanos(rv.Created), rv.Origin, rv.OriginSeq, rv.VV.String())
	if err != nil {
		return Applied{}, fmt.Errorf("add version: %w", err)
	}
	vid, _ := res.LastInsertId()
	ids := make([]int64, len(chunks))
	for i, ref := range chunks {
		if ref.Stored <= 0 || ref.Plain < 0 {
			return Applied{}, fmt.Errorf("version %s/%d: chunk %s has stored size %d", rv.Origin, rv.OriginSeq, ref.ID, ref.Stored)
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO chunks(hash, refs, plain_size, stored_size, held)
			VALUES (?, 1, ?, ?, 0)
			ON CONFLICT(hash) DO UPDATE SET refs = refs + 1, zero_at = NULL, zero_seq = NULL
			RETURNING id`, ref.ID[:], ref.Plain, ref.Stored).Scan(&ids[i])
		if err != nil {
			return Applied{}, fmt.Errorf("reference chunk %s: %w", ref.ID, err)
		}
	}
	if err := tx.insertVersionChunks(ctx, vid, ids); err != nil {
		return Applied{}, err
	}
	if err := tx.setHead(ctx, obj, num, !rv.Deleted); err != nil {
		return Applied{}, err
	}
	if err := tx.setObjectVV(ctx, obj, clock); err != nil {
		return Applied{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE changes SET version = ? WHERE seq = ?`, num, seq); err != nil {
		return Applied{}, err
	}
	if _, err := tx.prune(ctx, obj, num, seq); err != nil {
		return Applied{}, err
	}
	var name string
	if err := tx.QueryRowContext(ctx, `SELECT name FROM objects WHERE id = ?`, obj).Scan(&name); err != nil {
		return Applied{}, err
	}
	return Applied{Name: name, Added: true}, nil
}

// copyVersion adds version v, with its identity and chunks, as the head of
// the object named to.
func (tx *Tx) copyVersion(ctx context.Context, v Version, to string) error {
	obj, head, err := tx.object(ctx, to, true)
	if err != nil {
		return err
	}
	num := head + 1
	res, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, deleted, size, mode, mtime, content_type, sha256, created, origin, origin_seq, vv)
		SELECT ?, ?, deleted, size, mode, mtime, content_type, sha256, created, origin, origin_seq, vv FROM versions WHERE id = ?`,
		obj, num, v.id)
	if err != nil {
		return fmt.Errorf("conflict copy: %w", err)
	}
	vid, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `INSERT INTO version_chunks(version_id, idx, chunk_id)
		SELECT ?, idx, chunk_id FROM version_chunks WHERE version_id = ?`, vid, v.id); err != nil {
		return fmt.Errorf("conflict copy chunks: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE chunks SET refs = refs + vc.n
		FROM (SELECT chunk_id, count(*) AS n FROM version_chunks WHERE version_id = ? GROUP BY chunk_id) AS vc
		WHERE chunks.id = vc.chunk_id`, v.id); err != nil {
		return fmt.Errorf("conflict copy references: %w", err)
	}
	var vvs string
	if err := tx.QueryRowContext(ctx, `SELECT vv FROM versions WHERE id = ?`, v.id).Scan(&vvs); err != nil {
		return err
	}
	vv, err := ParseVV(vvs)
	if err != nil {
		return err
	}
	clock, err := tx.objectVV(ctx, obj)
	if err != nil {
		return err
	}
	if err := tx.setObjectVV(ctx, obj, clock.Merge(vv)); err != nil {
		return err
	}
	if err := tx.setHead(ctx, obj, num, true); err != nil {
		return err
	}
	_, err = tx.prune(ctx, obj, num, tx.seq)
	return err
}

// SetPullSeq records how far into peer's change log this node has applied.
func (tx *Tx) SetPullSeq(ctx context.Context, peer string, seq int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE peers SET pull_seq = ? WHERE id = ?`, seq, peer)
	return err
}
