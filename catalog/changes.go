package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Change is one entry of the change log.
type Change struct {
	Seq       int64     `json:"seq"`
	Origin    string    `json:"origin"`
	OriginSeq int64     `json:"origin_seq"`
	At        time.Time `json:"at"`
	Op        string    `json:"op"`
	Name      string    `json:"name,omitempty"`
	Version   int64     `json:"version,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// logChange appends a change by this node and returns its sequence number.
// Every transaction that drops a reference count to zero logs a change
// first, so the sequence orders those events against write sessions. hash
// is the change's content hash (contentHash; nil for changes that are not
// about an object).
func (tx *Tx) logChange(ctx context.Context, op, name string, version int64, detail string, hash []byte) (int64, error) {
	var err error
	if tx.ownNext > 0 {
		// seq is the row's rowid: no RETURNING (which buffers its rows).
		tx.originSeq = tx.ownNext
		var res sql.Result
		res, err = tx.ExecContext(ctx, `INSERT INTO changes(origin, origin_seq, at, op, name, version, detail, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			tx.c.origin, tx.originSeq, nanos(tx.now), op, name, version, detail, hash)
		if err == nil {
			tx.seq, err = res.LastInsertId()
		}
	} else {
		err = tx.QueryRowContext(ctx, `INSERT INTO changes(origin, origin_seq, at, op, name, version, detail, hash)
			VALUES (?1, `+nextOwnSeqExpr+`, ?3, ?4, ?5, ?6, ?7, ?8)
			RETURNING seq, origin_seq`,
			tx.c.origin, seqFloor, nanos(tx.now), op, name, version, detail, hash).Scan(&tx.seq, &tx.originSeq)
	}
	if err != nil {
		tx.ownNext = 0
		return 0, fmt.Errorf("log change: %w", err)
	}
	tx.ownNext = tx.originSeq + 1
	return tx.seq, nil
}

// Changes returns up to limit changes with a sequence above after, oldest first.
func (c *Catalog) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT seq, origin, origin_seq, at, op, name, version, detail
		FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var ch Change
		var at int64
		if err := rows.Scan(&ch.Seq, &ch.Origin, &ch.OriginSeq, &at, &ch.Op, &ch.Name, &ch.Version, &ch.Detail); err != nil {
			return nil, classify(err)
		}
		ch.At = fromNanos(at)
		out = append(out, ch)
	}
	return out, classify(rows.Err())
}

// lastSeq returns the newest change sequence, 0 for an empty log.
func lastSeq(ctx context.Context, q querier) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq)
	return seq, err
}

// GCRun is the record of one garbage collection.
type GCRun struct {
	Started     time.Time     `json:"started"`
	Finished    time.Time     `json:"finished"`
	Grace       time.Duration `json:"grace_ns"`
	DryRun      bool          `json:"dry_run"`
	Chunks      int64         `json:"chunks"`
	Bytes       int64         `json:"bytes"`
	Orphans     int64         `json:"orphans"`
	OrphanBytes int64         `json:"orphan_bytes"`
	Error       string        `json:"error,omitempty"`
}

// RecordGC stores a GC run and logs it as a change.
func (c *Catalog) RecordGC(ctx context.Context, r GCRun) error {
	return c.Tx(ctx, func(tx *Tx) error {
		detail := fmt.Sprintf(`{"chunks":%d,"bytes":%d,"orphans":%d}`, r.Chunks, r.Bytes, r.Orphans)
		if _, err := tx.logChange(ctx, "gc", "", 0, detail, nil); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO gc_runs(started, finished, grace_ns, dry_run, chunks, bytes, orphans, orphan_bytes, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, nanos(r.Started), nanos(r.Finished), int64(r.Grace), r.DryRun,
			r.Chunks, r.Bytes, r.Orphans, r.OrphanBytes, r.Error)
		return err
	})
}

// GCRuns returns the newest runs first.
func (c *Catalog) GCRuns(ctx context.Context, limit int) ([]GCRun, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT started, finished, grace_ns, dry_run, chunks, bytes, orphans, orphan_bytes, error
		FROM gc_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []GCRun
	for rows.Next() {
		var r GCRun
		var started, finished, grace int64
		if err := rows.Scan(&started, &finished, &grace, &r.DryRun, &r.Chunks, &r.Bytes, &r.Orphans, &r.OrphanBytes, &r.Error); err != nil {
			return nil, classify(err)
		}
		r.Started, r.Finished, r.Grace = fromNanos(started), fromNanos(finished), time.Duration(grace)
		out = append(out, r)
	}
	return out, classify(rows.Err())
}

// LastChanges returns the newest limit changes, oldest first.
func (c *Catalog) LastChanges(ctx context.Context, limit int) ([]Change, error) {
	seq, err := c.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	return c.Changes(ctx, max(0, seq-int64(limit)), limit)
}

// LastSeq returns the newest change sequence, 0 for an empty log.
func (c *Catalog) LastSeq(ctx context.Context) (int64, error) {
	seq, err := lastSeq(ctx, c.r)
	return seq, classify(err)
}
