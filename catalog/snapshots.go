package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
)

// Snapshot is the tree under Prefix as a mirror put left it. It is a point
// in this catalog's change log (Seq): it sees, of every object below
// Prefix, the newest version written here at or before that change. It
// copies nothing, and prune keeps the versions it sees (see prune).
type Snapshot struct {
	ID       string    `json:"id"`
	Prefix   string    `json:"prefix"`
	At       time.Time `json:"time"`
	Seq      int64     `json:"seq"`
	Node     string    `json:"node"`
	Source   string    `json:"source,omitempty"`
	Files    int64     `json:"files"`
	Dirs     int64     `json:"dirs"`
	Links    int64     `json:"links"`
	Bytes    int64     `json:"bytes"`
	NewBytes int64     `json:"new_bytes"`
	Removed  int64     `json:"removed"`
}

// ErrNoSnapshot means no snapshot answers an --at: an unknown ID, or a
// time before the first snapshot of the prefix. Its kind is NotFound.
var ErrNoSnapshot = fault.New(fault.NotFound, "no such snapshot")

// snapshotIDLen is the length of a snapshot ID in hex digits; IDs are
// random, and one is drawn again on the rare collision.
const snapshotIDLen = 8

const snapshotCols = `id, prefix, at, seq, node, source, files, dirs, links, bytes, new_bytes, removed`

func scanSnapshot(s scanner) (Snapshot, error) {
	var sn Snapshot
	var at int64
	err := s.Scan(&sn.ID, &sn.Prefix, &at, &sn.Seq, &sn.Node, &sn.Source, &sn.Files, &sn.Dirs, &sn.Links,
		&sn.Bytes, &sn.NewBytes, &sn.Removed)
	sn.At = fromNanos(at)
	return sn, err
}

// AddSnapshot records a snapshot of prefix at the newest change this
// transaction can see, which includes its own: the caller adds it in the
// transaction that finishes the tree (the last versions and deletions), so
// a snapshot exists only for a tree that is complete. ID, At, Seq and Node
// are set here.
func (tx *Tx) AddSnapshot(ctx context.Context, prefix names.Prefix, s Snapshot) (Snapshot, error) {
	s.Prefix, s.At, s.Node = prefix.String(), tx.now, tx.c.origin
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&s.Seq); err != nil {
		return Snapshot{}, err
	}
	for range 8 {
		var b [snapshotIDLen / 2]byte
		rand.Read(b[:])
		s.ID = hex.EncodeToString(b[:])
		res, err := tx.ExecContext(ctx, `INSERT INTO snapshots(`+snapshotCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
			s.ID, s.Prefix, nanos(s.At), s.Seq, s.Node, s.Source, s.Files, s.Dirs, s.Links, s.Bytes, s.NewBytes, s.Removed)
		if err != nil {
			return Snapshot{}, fmt.Errorf("add snapshot: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if _, err := tx.logChange(ctx, "snapshot", s.Prefix, 0, fmt.Sprintf(`{"id":%q}`, s.ID), nil); err != nil {
				return Snapshot{}, err
			}
			return s, nil
		}
	}
	return Snapshot{}, errors.New("add snapshot: no free ID")
}

// Snapshots returns the snapshots of prefix and of everything below it
// (the root: all), oldest first.
func (c *Catalog) Snapshots(ctx context.Context, prefix names.Prefix) ([]Snapshot, error) {
	return snapshotsIn(ctx, c.r, prefix)
}

// covers is the SQL condition that snapshot s's prefix is name or one of
// its ancestors (bound twice, to the name).
const covers = `(s.prefix = '' OR s.prefix = ? OR substr(?, 1, length(s.prefix) + 1) = s.prefix || '/')`

// FindSnapshot resolves what --at names for the tree under prefix: a
// snapshot ID (or a unique beginning of one, at least 4 digits), or, with a
// time, the newest snapshot of prefix or of a directory above it taken at
// or before then.
func (c *Catalog) FindSnapshot(ctx context.Context, prefix names.Prefix, id string, at time.Time) (Snapshot, error) {
	p := prefix.String()
	if id != "" {
		if len(id) < 4 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
			return Snapshot{}, fmt.Errorf("snapshot %q: %w", id, ErrNoSnapshot)
		}
		rows, err := c.r.QueryContext(ctx, `SELECT `+snapshotCols+` FROM snapshots WHERE substr(id, 1, ?) = ? LIMIT 2`,
			len(id), strings.ToLower(id))
		if err != nil {
			return Snapshot{}, classify(err)
		}
		defer rows.Close()
		var found []Snapshot
		for rows.Next() {
			s, err := scanSnapshot(rows)
			if err != nil {
				return Snapshot{}, classify(err)
			}
			found = append(found, s)
		}
		if err := rows.Err(); err != nil {
			return Snapshot{}, classify(err)
		}
		switch {
		case len(found) == 0:
			return Snapshot{}, fmt.Errorf("snapshot %q: %w", id, ErrNoSnapshot)
		case len(found) > 1:
			return Snapshot{}, fault.E(fault.Invalid, "snapshot %q: more than one ID begins so; give more digits", id)
		}
		s := found[0]
		if s.Prefix != "" && p != s.Prefix && !strings.HasPrefix(p, s.Prefix+"/") {
			return Snapshot{}, fault.E(fault.Invalid, "snapshot %s is of %q, not of %q", s.ID, s.Prefix, p)
		}
		return s, nil
	}
	row := c.r.QueryRowContext(ctx, `SELECT `+snapshotCols+` FROM snapshots s WHERE `+covers+` AND at <= ?
		ORDER BY at DESC, seq DESC LIMIT 1`, p, p, nanos(at))
	s, err := scanSnapshot(row)
	if errors.Is(err, sql.ErrNoRows) {
		first := "none was taken"
		var t sql.NullInt64
		if c.r.QueryRowContext(ctx, `SELECT min(at) FROM snapshots s WHERE `+covers, p, p).Scan(&t) == nil && t.Valid {
			first = "the first is of " + fromNanos(t.Int64).Format(time.RFC3339)
		}
		return Snapshot{}, fmt.Errorf("%q at %s: %w (%s)", p, at.Format(time.RFC3339), ErrNoSnapshot, first)
	}
	return s, classify(err)
}
