package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/retention"
)

// Purge and forget drop versions for good: their chunks lose the
// references, and the next gc takes what nothing else holds. Each is a
// change of the log that travels to peers: "purge" carries the object's
// vector (a peer drops every version that vector covers, and keeps any
// written concurrently), "forget" the identities of the versions it
// dropped.

// MaxDrop bounds the versions one forget change names.
const MaxDrop = 4096

// dropDetail is a purge's or forget's change detail, as logged and sent.
type dropDetail struct {
	VV   VV         `json:"vv,omitempty"`
	Drop []Identity `json:"drop,omitempty"`
}

// Purge drops every version of name, its row and its files cache entry,
// and returns how many versions went. Snapshots that saw the object no
// longer restore it: that is what a purge is for.
func (tx *Tx) Purge(ctx context.Context, n names.Name) (int64, error) {
	name := n.String()
	obj, _, err := tx.object(ctx, name, false)
	if err != nil {
		return 0, err
	}
	var vvs string
	if err := tx.QueryRowContext(ctx, `SELECT vv FROM objects WHERE id = ?`, obj).Scan(&vvs); err != nil {
		return 0, err
	}
	vv, err := ParseVV(vvs)
	if err != nil {
		return 0, err
	}
	detail, _ := json.Marshal(dropDetail{VV: vv})
	seq, err := tx.logChange(ctx, "purge", name, 0, string(detail), contentHash("purge", name, true, 0, 0, 0, vv.String(), nil, nanos(tx.now), "", "", ""))
	if err != nil {
		return 0, err
	}
	return tx.dropAll(ctx, obj, name, seq, func(VV) bool { return true })
}

// dropAll drops the versions of obj that drop selects (by vector); when
// none is left, the object goes too. It returns how many went.
func (tx *Tx) dropAll(ctx context.Context, obj int64, name string, seq int64, drop func(VV) bool) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, vv FROM versions WHERE object_id = ?`, obj)
	if err != nil {
		return 0, err
	}
	var gone []int64
	left := 0
	for rows.Next() {
		var vid int64
		var vvs string
		if err := rows.Scan(&vid, &vvs); err != nil {
			rows.Close()
			return 0, err
		}
		vv, err := ParseVV(vvs)
		if err != nil {
			rows.Close()
			return 0, err
		}
		if drop(vv) {
			gone = append(gone, vid)
		} else {
			left++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, vid := range gone {
		if err := tx.dropVersion(ctx, vid, seq); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM files_cache WHERE name = ?`, name); err != nil {
		return 0, err
	}
	if left == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE id = ?`, obj); err != nil {
			return 0, fmt.Errorf("drop object %s: %w", name, err)
		}
		return int64(len(gone)), nil
	}
	return int64(len(gone)), tx.rehead(ctx, obj, drop)
}

// rehead makes the newest version left the head of obj, and keeps of its
// frontier what was not dropped (or, when nothing is, the head's entry).
func (tx *Tx) rehead(ctx context.Context, obj int64, dropped func(VV) bool) error {
	var num int64
	var deleted bool
	var origin, vvs string
	var oseq, created int64
	err := tx.QueryRowContext(ctx, `SELECT num, deleted, origin, origin_seq, vv, created FROM versions
		WHERE object_id = ? ORDER BY num DESC LIMIT 1`, obj).Scan(&num, &deleted, &origin, &oseq, &vvs, &created)
	if err != nil {
		return err
	}
	if err := tx.setHead(ctx, obj, num, !deleted); err != nil {
		return err
	}
	front, err := tx.frontier(ctx, obj)
	if err != nil {
		return err
	}
	var next []sibling
	for _, s := range front {
		if !dropped(s.VV) {
			next = append(next, s)
		}
	}
	if len(next) == 0 {
		vv, err := ParseVV(vvs)
		if err != nil {
			return err
		}
		next = []sibling{{Origin: origin, Seq: oseq, VV: vv, Created: created, Deleted: deleted}}
	}
	return tx.setFrontier(ctx, obj, next)
}

// ForgetResult says what a forget kept and dropped.
type ForgetResult struct {
	Snapshots []ForgotSnapshot `json:"snapshots"`
	Versions  []ForgotVersion  `json:"versions"`
	// Kept and Dropped count the versions looked at.
	Kept    int64 `json:"versions_kept"`
	Dropped int64 `json:"versions_dropped"`
}

// ForgotSnapshot is a snapshot forget looked at: kept (with the rules
// that keep it) or dropped.
type ForgotSnapshot struct {
	Snapshot
	Keep bool     `json:"keep"`
	Why  []string `json:"why,omitempty"`
}

// ForgotVersion is a version forget dropped.
type ForgotVersion struct {
	Name    string    `json:"name"`
	Num     int64     `json:"version"`
	Created time.Time `json:"created"`
}

// ErrDryRun rolls back a transaction of a dry run.
var errDryRun = errors.New("dry run")

// forgetPage is how many objects one transaction of Forget covers, so that
// a forget of a large tree never holds the write lock for long.
const forgetPage = 256

// Forget applies policy to the snapshots of prefix and below (each prefix
// a series of its own) and to the versions of every object below prefix,
// by their creation times, and drops what it does not keep. An object's
// newest version is always kept, and so is every version a kept snapshot
// sees. Periods are in loc. The snapshots go in one transaction, the
// versions a page of objects per transaction; with dryRun every
// transaction is rolled back, and the result says what would go.
func (c *Catalog) Forget(ctx context.Context, prefix names.Prefix, policy retention.Policy, loc *time.Location, dryRun bool) (ForgetResult, error) {
	res := ForgetResult{Snapshots: []ForgotSnapshot{}, Versions: []ForgotVersion{}}
	if policy.IsZero() {
		return res, fault.E(fault.Invalid, "forget needs at least one --keep rule (rm --purge drops everything)")
	}
	snaps, err := snapshotsIn(ctx, c.r, prefix)
	if err != nil {
		return res, err
	}
	series := map[string][]int{}
	for i, s := range snaps {
		series[s.Prefix] = append(series[s.Prefix], i)
	}
	var forgotten []string
	for _, idx := range series {
		times := make([]time.Time, len(idx))
		for i, j := range idx {
			times[i] = snaps[j].At
		}
		keep, why := policy.Keep(times, loc)
		for i, j := range idx {
			res.Snapshots = append(res.Snapshots, ForgotSnapshot{Snapshot: snaps[j], Keep: keep[i], Why: why[i]})
			if !keep[i] {
				forgotten = append(forgotten, snaps[j].ID)
			}
		}
	}
	dropSnaps := func(tx *Tx) error {
		for _, id := range forgotten {
			if _, err := tx.ExecContext(ctx, `DELETE FROM snapshots WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	}
	if !dryRun && len(forgotten) > 0 {
		if err := c.Tx(ctx, dropSnaps); err != nil {
			return res, err
		}
	}
	// Versions, a page of objects a transaction.
	lo, hi := prefix.String(), prefixEnd(prefix.Lead())
	first := true
	for {
		q, args := `SELECT id, name FROM objects WHERE name > ? AND (? = '' OR name < ?) ORDER BY name LIMIT ?`, []any{lo, hi, hi, forgetPage}
		if first && lo != "" {
			q, args = `SELECT id, name FROM objects WHERE name = ? OR (name >= ? AND (? = '' OR name < ?)) ORDER BY name LIMIT ?`,
				[]any{lo, prefix.Lead(), hi, hi, forgetPage}
		}
		first = false
		type objRow struct {
			id   int64
			name string
		}
		rows, err := c.r.QueryContext(ctx, q, args...)
		if err != nil {
			return res, classify(err)
		}
		var page []objRow
		for rows.Next() {
			var o objRow
			if err := rows.Scan(&o.id, &o.name); err != nil {
				rows.Close()
				return res, classify(err)
			}
			page = append(page, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, classify(err)
		}
		part := ForgetResult{}
		err = c.Tx(ctx, func(tx *Tx) error {
			part = ForgetResult{}
			if dryRun {
				// As the snapshots would be gone, for what they keep.
				if err := dropSnaps(tx); err != nil {
					return err
				}
			}
			for _, o := range page {
				if err := tx.forgetVersions(ctx, o.id, o.name, policy, loc, &part); err != nil {
					return err
				}
			}
			if dryRun {
				return errDryRun
			}
			return nil
		})
		if err != nil && !errors.Is(err, errDryRun) {
			return res, err
		}
		res.Kept += part.Kept
		res.Dropped += part.Dropped
		res.Versions = append(res.Versions, part.Versions...)
		if len(page) < forgetPage {
			return res, nil
		}
		lo = page[len(page)-1].name
	}
}

// forgetVersions applies policy to one object's versions.
func (tx *Tx) forgetVersions(ctx context.Context, obj int64, name string, policy retention.Policy, loc *time.Location, res *ForgetResult) error {
	type ver struct {
		id, num, seq int64
		created      time.Time
		who          Identity
		needed       bool // the head, or seen by a kept snapshot
	}
	// A version a snapshot that stays sees is needed: that snapshot's
	// change lies between the version's and the next one's.
	rows, err := tx.QueryContext(ctx, `SELECT v.id, v.num, v.seq, v.created, v.origin, v.origin_seq,
		v.num = o.head OR `+seenBySnapshot+`
		FROM versions v JOIN objects o ON o.id = v.object_id WHERE v.object_id = ? ORDER BY v.num`, obj)
	if err != nil {
		return err
	}
	var vs []ver
	for rows.Next() {
		var v ver
		var created int64
		if err := rows.Scan(&v.id, &v.num, &v.seq, &created, &v.who.Origin, &v.who.Seq, &v.needed); err != nil {
			rows.Close()
			return err
		}
		v.created = fromNanos(created)
		vs = append(vs, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	times := make([]time.Time, len(vs))
	for i, v := range vs {
		times[i] = v.created
	}
	keep, _ := policy.Keep(times, loc)
	var drop []ver
	for i, v := range vs {
		if keep[i] || v.needed {
			res.Kept++
			continue
		}
		drop = append(drop, v)
	}
	if len(drop) == 0 {
		return nil
	}
	for _, v := range drop {
		res.Dropped++
		res.Versions = append(res.Versions, ForgotVersion{Name: name, Num: v.num, Created: v.created})
	}
	gone := make([]forgotten, len(drop))
	for i, v := range drop {
		gone[i] = forgotten{id: v.id, who: v.who}
	}
	return tx.forget(ctx, name, gone)
}

// forgotten is a version of an object that forget drops: its row, and its
// identity (empty for a superseded version).
type forgotten struct {
	id  int64
	who Identity
}

// forget drops versions of name, none of them its head, logging "forget"
// changes that name them for peers, MaxDrop a change.
func (tx *Tx) forget(ctx context.Context, name string, drop []forgotten) error {
	for start := 0; start < len(drop); start += MaxDrop {
		part := drop[start:min(start+MaxDrop, len(drop))]
		var d dropDetail
		for _, v := range part {
			if v.who.Origin != "" && v.who.Seq > 0 {
				d.Drop = append(d.Drop, v.who)
			}
		}
		seq := tx.seq
		if len(d.Drop) > 0 {
			detail, _ := json.Marshal(d)
			var err error
			seq, err = tx.logChange(ctx, "forget", name, 0, string(detail), contentHash("forget", name, true, 0, 0, 0, string(detail), nil, nanos(tx.now), "", "", ""))
			if err != nil {
				return err
			}
		} else {
			// Versions without an identity (superseded ones) are this
			// node's alone: nothing for peers, but the drop still needs a
			// change of its own to order it against write sessions.
			var err error
			if seq, err = tx.logChange(ctx, "forget-local", name, 0, "", nil); err != nil {
				return err
			}
		}
		for _, v := range part {
			if err := tx.dropVersion(ctx, v.id, seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// ErrKept refuses to drop a version that a snapshot sees.
var ErrKept = fault.New(fault.Conflict, "a snapshot keeps this version")

// DropVersion drops version num of name for good, as S3's DeleteObject
// with a version ID does, and returns it. A version before the newest
// goes as forget drops one: a "forget" change names it, and peers drop it
// too. The newest is first superseded by the version before it, restored
// as a new version (or a new tombstone when that one was a deletion), so
// that the name shows what it showed before num was written; with no
// version before it, the object is purged. A version a snapshot sees is
// kept (ErrKept), as forget keeps it; one that does not exist is
// ErrNotFound. When the newest is a deletion and so is the one before it,
// the object stays deleted and num is the version that goes as well.
func (tx *Tx) DropVersion(ctx context.Context, n names.Name, num int64) (Version, error) {
	name := n.String()
	v, err := tx.version(ctx, name, num)
	if err != nil {
		return Version{}, err
	}
	var obj, head int64
	var seen bool
	var who Identity // read now: superseding num may prune it (keep-versions 1)
	err = tx.QueryRowContext(ctx, `SELECT o.id, o.head, v.origin, v.origin_seq, `+seenBySnapshot+`
		FROM versions v JOIN objects o ON o.id = v.object_id WHERE v.id = ?`, v.id).Scan(&obj, &head, &who.Origin, &who.Seq, &seen)
	if err != nil {
		return Version{}, err
	}
	if seen {
		return Version{}, fmt.Errorf("%s version %d: %w (forget the snapshot first)", name, num, ErrKept)
	}
	if num == head {
		var prev int64
		var prevDeleted bool
		err := tx.QueryRowContext(ctx, `SELECT num, deleted FROM versions WHERE object_id = ? AND num < ? ORDER BY num DESC LIMIT 1`,
			obj, num).Scan(&prev, &prevDeleted)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// The only version: the object goes.
			if _, err := tx.Purge(ctx, n); err != nil {
				return Version{}, err
			}
			return v, nil
		case err != nil:
			return Version{}, err
		case prevDeleted:
			// A tombstone supersedes num, whether num is one too.
			_, _, front, _, err := tx.objectHead(ctx, name)
			if err != nil {
				return Version{}, err
			}
			if _, err := tx.tombstone(ctx, n, obj, head, front); err != nil {
				return Version{}, err
			}
		default:
			if _, _, err := tx.Restore(ctx, n, prev); err != nil {
				return Version{}, err
			}
		}
	}
	return v, tx.forget(ctx, name, []forgotten{{id: v.id, who: who}})
}

// seenBySnapshot is the SQL condition that a snapshot sees version v of
// object o: the snapshot's change lies between v's and the next version's.
const seenBySnapshot = `EXISTS (SELECT 1 FROM snapshots s WHERE s.seq >= v.seq
	AND s.seq < coalesce((SELECT min(n.seq) FROM versions n WHERE n.object_id = v.object_id AND n.num > v.num), 1 << 62)
	AND (s.prefix = '' OR s.prefix = o.name OR substr(o.name, 1, length(s.prefix) + 1) = s.prefix || '/'))`

// applyDrop applies a peer's purge or forget to the object it names, if
// this node has it.
func (tx *Tx) applyDrop(ctx context.Context, rv RemoteVersion, seq int64) error {
	obj, _, err := tx.object(ctx, rv.Name, false)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rv.Op == "purge" {
		// What the purging node had seen goes; a version written
		// concurrently with the purge stays.
		_, err := tx.dropAll(ctx, obj, rv.Name, seq, func(v VV) bool {
			o := v.Compare(rv.VV)
			return o == Before || o == Equal
		})
		return err
	}
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT head FROM objects WHERE id = ?`, obj).Scan(&head); err != nil {
		return err
	}
	for _, who := range rv.Drop {
		var vid, num int64
		var seen bool
		err := tx.QueryRowContext(ctx, `SELECT v.id, v.num, `+seenBySnapshot+`
			FROM versions v JOIN objects o ON o.id = v.object_id
			WHERE v.object_id = ? AND v.origin = ? AND v.origin_seq = ?`,
			obj, who.Origin, who.Seq).Scan(&vid, &num, &seen)
		if errors.Is(err, sql.ErrNoRows) || num == head || seen {
			// Gone already; or the head here, never forgotten; or a
			// version one of this node's snapshots sees, kept as the
			// node's own forget and prune keep it.
			continue
		}
		if err != nil {
			return err
		}
		if err := tx.dropVersion(ctx, vid, seq); err != nil {
			return err
		}
	}
	return nil
}

// snapshotsIn lists the snapshots of prefix and below.
func snapshotsIn(ctx context.Context, q querier, prefix names.Prefix) ([]Snapshot, error) {
	p := prefix.String()
	rows, err := q.QueryContext(ctx, `SELECT `+snapshotCols+` FROM snapshots
		WHERE ? = '' OR prefix = ? OR (prefix > ? || '/' AND prefix < ? || '0')
		ORDER BY at, id`, p, p, p, p)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []Snapshot{}
	for rows.Next() {
		s, err := scanSnapshot(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, s)
	}
	return out, classify(rows.Err())
}
