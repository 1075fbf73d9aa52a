package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/loftstore/loft/store"
)

// AddVersions adds the versions nvs in order, each as AddVersion would, and
// returns what AddVersion returned for each. The first versions of objects
// that Prefetch found absent (the files of a tree's first put) are written
// a hundred at a time, a few statements each, not some eight statements a
// file; every other version goes through AddVersion. The rows written are
// the same, ids and sequence numbers included (TestAddVersionsAsOneByOne).
func (tx *Tx) AddVersions(ctx context.Context, nvs []NewVersion) ([]Added, error) {
	out := make([]Added, 0, len(nvs))
	var run []NewVersion // new objects, waiting to be written together
	inRun := make(map[string]bool)
	flush := func() error {
		for len(run) > 0 {
			n := min(len(run), addBatch)
			if tx.ownNext == 0 || n == 1 {
				// The first change of a transaction finds its origin_seq
				// in the log; AddVersion does that.
				n = 1
				a, err := tx.AddVersion(ctx, run[0])
				if err != nil {
					return fmt.Errorf("add %s: %w", run[0].Name, err)
				}
				out = append(out, a)
			} else {
				added, err := tx.addNew(ctx, run[:n])
				if err != nil {
					return err
				}
				out = append(out, added...)
			}
			run = run[n:]
		}
		clear(inRun)
		return nil
	}
	keep, err := tx.keepVersions(ctx)
	if err != nil {
		return nil, err
	}
	for _, nv := range nvs {
		name := nv.Name.String()
		if _, absent := tx.absent[name]; absent && !inRun[name] && keep >= 1 && !nv.Name.IsZero() {
			run = append(run, nv)
			inRun[name] = true
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		a, err := tx.AddVersion(ctx, nv)
		if err != nil {
			return nil, fmt.Errorf("add %s: %w", nv.Name, err)
		}
		out = append(out, a)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// addBatch is how many new objects addNew writes together.
const addBatch = 100

// addNew writes version 1 of new objects with distinct names, all absent,
// once this transaction knows its next origin_seq: the rows AddVersion
// would write one by one, in the same order and with the same ids.
func (tx *Tx) addNew(ctx context.Context, nvs []NewVersion) ([]Added, error) {
	for _, nv := range nvs {
		if err := nv.check(); err != nil {
			return nil, err
		}
	}
	// The ids SQLite would choose: one above the largest (for changes,
	// above any ever used: AUTOINCREMENT). This transaction holds the
	// write lock, so nothing takes them meanwhile.
	var seq0, obj0, ver0 int64
	if err := tx.QueryRowContext(ctx, `SELECT
		max(coalesce((SELECT max(seq) FROM changes), 0), coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)),
		coalesce((SELECT max(id) FROM objects), 0), coalesce((SELECT max(id) FROM versions), 0)`).Scan(&seq0, &obj0, &ver0); err != nil {
		return nil, fmt.Errorf("add versions: %w", err)
	}
	now := nanos(tx.now)
	own0 := tx.ownNext
	added := make([]Added, len(nvs))
	var changes, objects, versions rowsInsert
	for i, nv := range nvs {
		name := nv.Name.String()
		seq, own, obj, vid := seq0+1+int64(i), own0+int64(i), obj0+1+int64(i), ver0+1+int64(i)
		changes.add(seq, tx.c.origin, own, now, "put", name, 1, "", nv.putHash(now))
		// As localWrite writes a new object: one sibling, this write.
		vv := VV{tx.c.origin: 1}
		front, err := json.Marshal([]sibling{{Origin: tx.c.origin, Seq: own, VV: vv, Created: now}})
		if err != nil {
			return nil, err
		}
		objects.add(obj, name, 1, true, string(front), vv.String())
		versions.add(vid, obj, 1, nv.Size, nv.Mode, nv.MTime.UnixNano(), nv.ContentType, nv.SHA256[:], now,
			tx.c.origin, own, vv.String(), nv.Kind, nv.Target, seq, nv.Meta.Encode())
		added[i].Version = tx.added(nv, 1, vid)
	}
	// Changes first, then each file's chunk references, then the objects
	// and versions: the order AddVersion writes them in, which is what
	// the chunks' AUTOINCREMENT ids follow.
	if err := changes.exec(ctx, tx, `INSERT INTO changes(seq, origin, origin_seq, at, op, name, version, detail, hash) VALUES `); err != nil {
		return nil, fmt.Errorf("log changes: %w", err)
	}
	ids, err := tx.referenceChunks(ctx, nvs, added)
	if err != nil {
		return nil, err
	}
	if err := objects.exec(ctx, tx, `INSERT INTO objects(id, name, head, live, siblings, vv) VALUES `); err != nil {
		return nil, fmt.Errorf("add objects: %w", err)
	}
	if err := versions.exec(ctx, tx, `INSERT INTO versions(id, object_id, num, size, mode, mtime, content_type, sha256, created,
		origin, origin_seq, vv, kind, target, seq, meta) VALUES `); err != nil {
		return nil, fmt.Errorf("add versions: %w", err)
	}
	for i := range nvs {
		if err := tx.insertVersionChunks(ctx, added[i].Version.id, ids[i]); err != nil {
			return nil, err
		}
		delete(tx.absent, nvs[i].Name.String())
	}
	last := int64(len(nvs) - 1)
	tx.seq, tx.originSeq, tx.ownNext = seq0+1+last, own0+last, own0+last+1
	return added, nil
}

// referenceChunks takes one reference on each chunk of each of nvs, in
// order, and returns the chunks' row ids by file. A chunk that had no row,
// or no reference, before goes to the Revived of the first file that names
// it, as AddVersion reports it.
func (tx *Tx) referenceChunks(ctx context.Context, nvs []NewVersion, added []Added) ([][]int64, error) {
	type ref struct {
		file          int
		id            store.ID
		plain, stored int64
	}
	var all []ref
	for i, nv := range nvs {
		for _, r := range nv.Chunks {
			all = append(all, ref{i, r.ID, r.Plain, r.Stored})
		}
	}
	rowID := make(map[store.ID]int64, len(all))
	fresh := make(map[store.ID]bool) // a row returned with one reference
	const perStmt = 300
	for start := 0; start < len(all); start += perStmt {
		var rows rowsInsert
		for _, r := range all[start:min(start+perStmt, len(all))] {
			rows.add(r.id[:], 1, r.plain, r.stored)
		}
		res, err := tx.QueryContext(ctx, `INSERT INTO chunks(hash, refs, plain_size, stored_size) VALUES `+rows.values()+`
			ON CONFLICT(hash) DO UPDATE SET refs = refs + 1, held = 1, zero_at = NULL, zero_seq = NULL
			RETURNING hash, id, refs`, rows.args...)
		if err != nil {
			return nil, fmt.Errorf("reference chunks: %w", err)
		}
		for res.Next() {
			var h []byte
			var id, refs int64
			if err := res.Scan(&h, &id, &refs); err != nil {
				res.Close()
				return nil, fmt.Errorf("reference chunks: %w", err)
			}
			var cid store.ID
			copy(cid[:], h)
			rowID[cid] = id
			if refs == 1 {
				fresh[cid] = true
			}
		}
		res.Close()
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("reference chunks: %w", err)
		}
	}
	ids := make([][]int64, len(nvs))
	for i, nv := range nvs {
		ids[i] = make([]int64, 0, len(nv.Chunks))
	}
	for _, r := range all {
		id, ok := rowID[r.id]
		if !ok {
			return nil, fmt.Errorf("reference chunk %s: no row returned", r.id)
		}
		ids[r.file] = append(ids[r.file], id)
		if fresh[r.id] {
			delete(fresh, r.id) // the first file that names it
			added[r.file].Revived = append(added[r.file].Revived, r.id)
			if err := tx.forgetReplicas(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// rowsInsert gathers the rows of a multi-row INSERT.
type rowsInsert struct {
	n, width int
	args     []any
}

func (r *rowsInsert) add(vals ...any) {
	r.n, r.width = r.n+1, len(vals)
	r.args = append(r.args, vals...)
}

// values returns the statement's VALUES list.
func (r *rowsInsert) values() string {
	row := "(?" + strings.Repeat(",?", r.width-1) + ")"
	return strings.TrimSuffix(strings.Repeat(row+",", r.n), ",")
}

func (r *rowsInsert) exec(ctx context.Context, tx *Tx, insert string) error {
	if r.n == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, insert+r.values(), r.args...)
	return err
}
