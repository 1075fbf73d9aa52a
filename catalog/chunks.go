package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loftstore/loft/store"
)

// ChunkState is what the catalog knows of a chunk.
type ChunkState struct {
	Known   bool // a row exists
	Held    bool // its file is in this node's store
	Refs    int64
	Stored  int64 // bytes of its file
	ZeroSeq int64 // with Refs == 0: the change that dropped the last reference
}

// Lookup returns the state of a chunk, reading outside any transaction.
func (c *Catalog) Lookup(ctx context.Context, id store.ID) (ChunkState, error) {
	var st ChunkState
	var zs sql.NullInt64
	err := c.r.lookup(ctx, `SELECT refs, stored_size, zero_seq, held FROM chunks WHERE hash = ?`, id[:]).Scan(&st.Refs, &st.Stored, &zs, &st.Held)
	if errors.Is(err, sql.ErrNoRows) {
		return ChunkState{}, nil
	}
	if err != nil {
		return ChunkState{}, classify(err)
	}
	st.Known, st.ZeroSeq = true, zs.Int64
	return st, nil
}

// Protect keeps an unreferenced chunk from the sweep for as long as the
// session that started at change startSeq lives, by moving its zero_seq up
// to startSeq. It reports whether the chunk has a row at all. The caller
// checks, in the same transaction, that the chunk's file exists.
func (tx *Tx) Protect(ctx context.Context, id store.ID, startSeq int64) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE chunks SET zero_seq = max(coalesce(zero_seq, 0), ?)
		WHERE hash = ? AND refs = 0`, startSeq, id[:])
	if err != nil {
		return false, fmt.Errorf("protect chunk %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM chunks WHERE hash = ?`, id[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Garbage is an unreferenced chunk.
type Garbage struct {
	ID     store.ID
	Stored int64
	ZeroAt time.Time

	row     int64
	zeroAt  int64
	zeroSeq int64
}

// SweepRule says which garbage may be removed: unreferenced since Before
// or earlier (now less the grace period), and, when write sessions are live,
// since before change BelowSeq, where the oldest of them started. (The first
// session of a new repository starts at change 0, so "live" cannot be told
// from BelowSeq.)
type SweepRule struct {
	Before   time.Time
	Live     bool
	BelowSeq int64

	// after, when set, starts a listing past a chunk Garbage returned.
	after    bool
	afterAt  int64
	afterRow int64
}

// After returns the rule for the page of garbage that follows g.
func (r SweepRule) After(g Garbage) SweepRule {
	r.after, r.afterAt, r.afterRow = true, g.zeroAt, g.row
	return r
}

// Allows reports whether the rule allows removing g, as Garbage saw it.
func (r SweepRule) Allows(g Garbage) bool {
	return g.zeroAt <= nanos(r.Before) && (!r.Live || g.zeroSeq < r.BelowSeq)
}

func (r SweepRule) where() (string, []any) {
	q := `refs = 0 AND zero_at <= ?`
	args := []any{nanos(r.Before)}
	if r.Live {
		q += ` AND coalesce(zero_seq, 0) < ?`
		args = append(args, r.BelowSeq)
	}
	if r.after {
		q += ` AND (zero_at, id) > (?, ?)`
		args = append(args, r.afterAt, r.afterRow)
	}
	return q, args
}

// Garbage returns up to limit chunks the rule allows removing, oldest first.
func (tx *Tx) Garbage(ctx context.Context, rule SweepRule, limit int) ([]Garbage, error) {
	return garbage(ctx, tx, rule, limit)
}

// Garbage lists removable chunks outside a transaction, for previews.
func (c *Catalog) Garbage(ctx context.Context, rule SweepRule, limit int) ([]Garbage, error) {
	g, err := garbage(ctx, c.r, rule, limit)
	return g, classify(err)
}

func garbage(ctx context.Context, q querier, rule SweepRule, limit int) ([]Garbage, error) {
	where, args := rule.where()
	rows, err := q.QueryContext(ctx, `SELECT id, hash, stored_size, zero_at, coalesce(zero_seq, 0) FROM chunks WHERE `+where+`
		ORDER BY zero_at, id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Garbage
	for rows.Next() {
		var g Garbage
		var h []byte
		if err := rows.Scan(&g.row, &h, &g.Stored, &g.zeroAt, &g.zeroSeq); err != nil {
			return nil, err
		}
		copy(g.ID[:], h)
		g.ZeroAt = fromNanos(g.zeroAt)
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeleteGarbage deletes the rows of the given garbage chunks that are still
// unreferenced with the same stamps Garbage saw (not referenced and dropped
// again since), and returns those it deleted. The foreign key from
// version_chunks makes deleting a referenced chunk impossible besides.
func (tx *Tx) DeleteGarbage(ctx context.Context, gs []Garbage) ([]Garbage, error) {
	var out []Garbage
	for _, g := range gs {
		res, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE id = ? AND refs = 0
			AND zero_at = ? AND coalesce(zero_seq, 0) = ?`, g.row, g.zeroAt, g.zeroSeq)
		if err != nil {
			return nil, fmt.Errorf("delete chunk %s: %w", g.ID, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			out = append(out, g)
		}
	}
	return out, nil
}

// GarbageTotals sums garbage: everything unreferenced, and what the rule
// allows removing now.
type GarbageTotals struct {
	Chunks        int64     `json:"chunks"`
	Bytes         int64     `json:"bytes"`
	Oldest        time.Time `json:"oldest,omitzero"`
	ReclaimChunks int64     `json:"reclaimable_chunks"`
	ReclaimBytes  int64     `json:"reclaimable_bytes"`
}

// GarbageTotals reports garbage pending and what rule would reclaim.
func (c *Catalog) GarbageTotals(ctx context.Context, rule SweepRule) (GarbageTotals, error) {
	var t GarbageTotals
	var oldest int64
	err := c.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(stored_size), 0), coalesce(min(zero_at), 0)
		FROM chunks WHERE refs = 0`).Scan(&t.Chunks, &t.Bytes, &oldest)
	if err != nil {
		return t, classify(err)
	}
	t.Oldest = fromNanos(oldest)
	where, args := rule.where()
	err = c.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(stored_size), 0) FROM chunks WHERE `+where,
		args...).Scan(&t.ReclaimChunks, &t.ReclaimBytes)
	return t, classify(err)
}

// Stats are totals over the whole repository.
type Stats struct {
	Objects        int64         `json:"objects"`
	DeletedObjects int64         `json:"deleted_objects"`
	Versions       int64         `json:"versions"`
	LiveBytes      int64         `json:"live_bytes"`    // newest versions of live objects
	LogicalBytes   int64         `json:"logical_bytes"` // every version kept
	Chunks         int64         `json:"chunks"`        // referenced chunks
	PlainBytes     int64         `json:"plain_bytes"`   // their size before compression
	StoredBytes    int64         `json:"stored_bytes"`  // their size on disk
	Garbage        GarbageTotals `json:"garbage"`
}

// Stats computes repository totals. rule decides what counts as reclaimable.
func (c *Catalog) Stats(ctx context.Context, rule SweepRule) (Stats, error) {
	var s Stats
	err := c.r.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM objects WHERE live = 1 AND head > 0),
			(SELECT count(*) FROM objects WHERE live = 0 AND head > 0),
			(SELECT count(*) FROM versions),
			(SELECT coalesce(sum(v.size), 0) FROM objects o JOIN versions v ON v.object_id = o.id AND v.num = o.head WHERE o.live = 1),
			(SELECT coalesce(sum(size), 0) FROM versions),
			(SELECT count(*) FROM chunks WHERE refs > 0),
			(SELECT coalesce(sum(plain_size), 0) FROM chunks WHERE refs > 0),
			(SELECT coalesce(sum(stored_size), 0) FROM chunks WHERE refs > 0)`).Scan(
		&s.Objects, &s.DeletedObjects, &s.Versions, &s.LiveBytes, &s.LogicalBytes, &s.Chunks, &s.PlainBytes, &s.StoredBytes)
	if err != nil {
		return s, classify(err)
	}
	s.Garbage, err = c.GarbageTotals(ctx, rule)
	return s, err
}

// ChunkRow is a chunk's row, for audits.
type ChunkRow struct {
	ID     store.ID
	Refs   int64
	Plain  int64
	Stored int64
	Held   bool
}

// EachChunk calls fn for every chunk row, in id order, a page at a time.
func (c *Catalog) EachChunk(ctx context.Context, fn func(ChunkRow) error) error {
	var after int64
	for {
		rows, err := c.r.QueryContext(ctx, `SELECT id, hash, refs, plain_size, stored_size, held FROM chunks
			WHERE id > ? ORDER BY id LIMIT 1000`, after)
		if err != nil {
			return classify(err)
		}
		var page []ChunkRow
		for rows.Next() {
			var r ChunkRow
			var h []byte
			if err := rows.Scan(&after, &h, &r.Refs, &r.Plain, &r.Stored, &r.Held); err != nil {
				rows.Close()
				return classify(err)
			}
			copy(r.ID[:], h)
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify(err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

// Known returns which of ids have a chunk row.
func (c *Catalog) Known(ctx context.Context, ids []store.ID) (store.IDSet, error) {
	return known(ctx, c.r, ids)
}

// Known returns which of ids have a chunk row, inside the transaction.
func (tx *Tx) Known(ctx context.Context, ids []store.ID) (store.IDSet, error) {
	return known(ctx, tx, ids)
}

func known(ctx context.Context, q querier, ids []store.ID) (store.IDSet, error) {
	return among(ctx, q, ids, "")
}

// among returns which of ids have a chunk row matching the extra condition
// (SQL, may be empty), a few hundred IDs a query.
func among(ctx context.Context, q querier, ids []store.ID, cond string) (store.IDSet, error) {
	out := make(store.IDSet)
	const per = 500
	for start := 0; start < len(ids); start += per {
		part := ids[start:min(start+per, len(ids))]
		args := make([]any, len(part))
		for i := range part {
			args[i] = part[i][:]
		}
		rows, err := q.QueryContext(ctx, `SELECT hash FROM chunks WHERE `+cond+` hash IN (?`+
			strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, classify(err)
		}
		for rows.Next() {
			var h []byte
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, classify(err)
			}
			out.Add(store.ID(h))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, classify(err)
		}
	}
	return out, nil
}

// Drift is a chunk whose reference count disagrees with the versions.
type Drift struct {
	ID     store.ID `json:"id"`
	Refs   int64    `json:"refs"`
	Actual int64    `json:"actual"`
}

// refRows counts, per chunk, the rows that hold a reference on it: a
// version's chunk list, and a multipart upload's parts.
const refRows = `(SELECT chunk_id, count(*) AS n FROM (
		SELECT chunk_id FROM version_chunks UNION ALL SELECT chunk_id FROM upload_chunks) GROUP BY chunk_id)`

// RefDrift returns every chunk whose refs differs from the number of
// rows that reference it (version_chunks and upload_chunks).
func (c *Catalog) RefDrift(ctx context.Context) ([]Drift, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT c.hash, c.refs, coalesce(v.n, 0)
		FROM chunks c LEFT JOIN `+refRows+` v
		ON v.chunk_id = c.id WHERE c.refs != coalesce(v.n, 0)`)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []Drift
	for rows.Next() {
		var d Drift
		var h []byte
		if err := rows.Scan(&h, &d.Refs, &d.Actual); err != nil {
			return nil, classify(err)
		}
		copy(d.ID[:], h)
		out = append(out, d)
	}
	return out, classify(rows.Err())
}

// RebuildRefs sets every chunk's refs from the version->chunk lists (and
// the parts of multipart uploads) and
// returns how many rows it changed. Chunks that lose their last reference
// are stamped as garbage now.
func (tx *Tx) RebuildRefs(ctx context.Context) (int64, error) {
	seq, err := tx.logChange(ctx, "repair", "", 0, "rebuild reference counts", nil)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `WITH actual AS (
			SELECT c.id, coalesce((SELECT count(*) FROM version_chunks vc WHERE vc.chunk_id = c.id), 0) +
				coalesce((SELECT count(*) FROM upload_chunks uc WHERE uc.chunk_id = c.id), 0) AS n
			FROM chunks c)
		UPDATE chunks SET
			refs = actual.n,
			zero_at = CASE WHEN actual.n = 0 THEN coalesce(zero_at, ?) ELSE NULL END,
			zero_seq = CASE WHEN actual.n = 0 THEN coalesce(zero_seq, ?) ELSE NULL END
		FROM actual WHERE chunks.id = actual.id AND chunks.refs != actual.n`, nanos(tx.now), seq)
	if err != nil {
		return 0, fmt.Errorf("rebuild reference counts: %w", err)
	}
	return res.RowsAffected()
}

// Users returns up to limit "name@vN" strings of versions that use the chunk.
func (c *Catalog) Users(ctx context.Context, id store.ID, limit int) ([]string, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT DISTINCT o.name, v.num FROM chunks c
		JOIN version_chunks vc ON vc.chunk_id = c.id
		JOIN versions v ON v.id = vc.version_id
		JOIN objects o ON o.id = v.object_id
		WHERE c.hash = ? ORDER BY o.name, v.num LIMIT ?`, id[:], limit)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		var num int64
		if err := rows.Scan(&name, &num); err != nil {
			return nil, classify(err)
		}
		out = append(out, fmt.Sprintf("%s@v%d", name, num))
	}
	return out, classify(rows.Err())
}

// QuickCheck runs SQLite's own consistency check and returns its complaints.
func (c *Catalog) QuickCheck(ctx context.Context) ([]string, error) {
	rows, err := c.r.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, classify(err)
		}
		if s != "ok" {
			out = append(out, s)
		}
	}
	return out, classify(rows.Err())
}
