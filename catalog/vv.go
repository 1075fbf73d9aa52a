package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/loftstore/loft/names"
)

// VV is a version vector: for each origin node, how many writes by it an
// object's history includes. Comparing two vectors tells whether one version
// follows the other or whether they were written concurrently.
type VV map[string]int64

// Order is the result of comparing two version vectors.
type Order int

const (
	Equal      Order = iota
	Before           // a is in b's past
	After            // a follows b
	Concurrent       // neither follows the other
)

// Compare orders a against b.
func (a VV) Compare(b VV) Order {
	less, more := false, false
	for k, n := range a {
		if m := b[k]; n < m {
			less = true
		} else if n > m {
			more = true
		}
	}
	for k, m := range b {
		if _, ok := a[k]; !ok && m > 0 {
			less = true
		}
	}
	switch {
	case less && more:
		return Concurrent
	case less:
		return Before
	case more:
		return After
	}
	return Equal
}

// Merge returns the element-wise maximum of a and b.
func (a VV) Merge(b VV) VV {
	out := make(VV, len(a)+len(b))
	for k, n := range a {
		out[k] = n
	}
	for k, n := range b {
		out[k] = max(out[k], n)
	}
	return out
}

// MaxOrigins caps the entries of a vector received from a peer.
const MaxOrigins = 256

// String encodes the vector as JSON with sorted keys.
func (a VV) String() string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		kj, _ := json.Marshal(k)
		b = append(b, kj...)
		b = append(b, ':')
		b = fmt.Appendf(b, "%d", a[k])
	}
	return string(append(b, '}'))
}

// ParseVV decodes a vector written by String.
func ParseVV(s string) (VV, error) {
	var v VV
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("version vector %q: %w", s, err)
	}
	if len(v) > MaxOrigins {
		return nil, fmt.Errorf("version vector has %d origins, over %d", len(v), MaxOrigins)
	}
	for k, n := range v {
		if n < 0 || k == "" {
			return nil, fmt.Errorf("version vector %q: bad entry", s)
		}
	}
	if v == nil {
		v = VV{}
	}
	return v, nil
}

// sibling is a version on an object's frontier: no known version follows it.
type sibling struct {
	Origin  string `json:"o"`
	Seq     int64  `json:"s"`
	VV      VV     `json:"vv"`
	Created int64  `json:"c"`
	Deleted bool   `json:"d,omitempty"`
}

func (a sibling) same(origin string, seq int64) bool { return a.Origin == origin && a.Seq == seq }

// earlier orders concurrent versions: by creation time, then origin.
func (a sibling) earlier(b sibling) bool {
	if a.Created != b.Created {
		return a.Created < b.Created
	}
	return a.Origin < b.Origin
}

// MaxSiblings caps an object's frontier: concurrent writes not yet resolved.
const MaxSiblings = 64

// resolve picks, from a frontier, the version the object's name shows and
// the versions shown as conflict copies. The earliest write keeps the name;
// every later concurrent write is a conflict copy named after its node; a
// deletion never hides a concurrent write and never becomes a copy. With
// only deletions on the frontier, the object is deleted.
func resolve(front []sibling) (winner int, copies []int) {
	winner = -1
	for i, s := range front {
		if s.Deleted {
			continue
		}
		if winner < 0 || s.earlier(front[winner]) {
			winner = i
		}
	}
	if winner < 0 {
		for i, s := range front {
			if winner < 0 || s.earlier(front[winner]) {
				winner = i
			}
		}
		return winner, nil
	}
	for i, s := range front {
		if i != winner && !s.Deleted {
			copies = append(copies, i)
		}
	}
	return winner, copies
}

func (tx *Tx) frontier(ctx context.Context, obj int64) ([]sibling, error) {
	var s string
	if err := tx.QueryRowContext(ctx, `SELECT siblings FROM objects WHERE id = ?`, obj).Scan(&s); err != nil {
		return nil, fmt.Errorf("object frontier: %w", err)
	}
	return parseFrontier(s)
}

// parseFrontier decodes an object's stored frontier.
func parseFrontier(s string) ([]sibling, error) {
	var front []sibling
	if err := json.Unmarshal([]byte(s), &front); err != nil {
		return nil, fmt.Errorf("object frontier %q: %w", s, ErrCorrupt)
	}
	return front, nil
}

// setFrontier stores an object's frontier, and the merge of its vectors as
// the object's clock.
func (tx *Tx) setFrontier(ctx context.Context, obj int64, front []sibling) error {
	clock := VV{}
	for _, s := range front {
		clock = clock.Merge(s.VV)
	}
	b, err := json.Marshal(front)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE objects SET siblings = ?, vv = ? WHERE id = ?`, string(b), clock.String(), obj)
	return err
}

// localWrite records a write by this node to object obj (named name), whose
// frontier is front and whose new head is version num: its vector follows
// every version on the frontier, which it replaces. Conflict copies of the
// frontier it resolves are retired. The object's row (frontier, clock,
// head, liveness) is written in one statement; *obj 0 means the object is
// new, and its row is inserted. It returns the new version's vector; the
// caller adds the version itself.
func (tx *Tx) localWrite(ctx context.Context, obj *int64, name names.Name, front []sibling, deleted bool, num int64) (string, error) {
	v := VV{}
	for _, s := range front {
		v = v.Merge(s.VV)
	}
	v[tx.c.origin]++
	next := []sibling{{Origin: tx.c.origin, Seq: tx.originSeq, VV: v, Created: nanos(tx.now), Deleted: deleted}}
	if err := tx.retireCopies(ctx, name, front, next); err != nil {
		return "", err
	}
	b, err := json.Marshal(next)
	if err != nil {
		return "", err
	}
	vv := v.String() // one sibling: the object's clock is its vector
	delete(tx.heads, name.String())
	if *obj == 0 {
		delete(tx.absent, name.String())
		res, err := tx.ExecContext(ctx, `INSERT INTO objects(name, head, live, siblings, vv) VALUES (?, ?, ?, ?, ?)`,
			name.String(), num, !deleted, string(b), vv)
		if err != nil {
			return "", fmt.Errorf("add object %s: %w", name, err)
		}
		*obj, _ = res.LastInsertId()
		return vv, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE objects SET siblings = ?, vv = ?, head = ?, live = ? WHERE id = ?`,
		string(b), vv, num, !deleted, *obj); err != nil {
		return "", fmt.Errorf("object clock: %w", err)
	}
	return vv, nil
}

// headCols are versionCols of a head version that may be missing (LEFT
// JOIN): a missing one scans as the zero Version.
const headCols = `o.name, coalesce(v.id, 0), coalesce(v.num, 0), coalesce(v.deleted, 0), coalesce(v.size, 0),
	coalesce(v.mode, 0), coalesce(v.mtime, 0), coalesce(v.content_type, ''), v.sha256, coalesce(v.created, 0),
	coalesce(v.origin, ''), coalesce(v.restored_from, 0),
	(SELECT count(*) FROM version_chunks vc WHERE vc.version_id = v.id), coalesce(v.kind, ''), coalesce(v.target, ''),
	coalesce(v.meta, '')`

// objectHead returns an object's row id (0 when there is none), its head
// version number, its frontier and its head version (hv.id 0 when it has
// none), in one query: what a local write reads before it writes.
func (tx *Tx) objectHead(ctx context.Context, name string) (id, head int64, front []sibling, hv Version, err error) {
	if _, ok := tx.absent[name]; ok {
		return 0, 0, nil, Version{}, nil
	}
	h, ok := tx.heads[name]
	if ok {
		delete(tx.heads, name) // read once: the caller is about to change it
	} else {
		row := tx.QueryRowContext(ctx, headQuery+` WHERE o.name = ?`, name)
		h, err = scanHead(row)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, 0, nil, Version{}, nil
		}
		if err != nil {
			return 0, 0, nil, Version{}, err
		}
	}
	if front, err = parseFrontier(h.siblings); err != nil {
		return 0, 0, nil, Version{}, err
	}
	return h.id, h.head, front, h.hv, nil
}

// objectRow is an object's row with its head version, as objectHead and
// Prefetch read them.
type objectRow struct {
	id, head int64
	siblings string
	hv       Version
}

// headQuery selects objectRow's columns from objects o and the head version v.
const headQuery = `SELECT o.id, o.head, o.siblings, ` + headCols + `
	FROM objects o LEFT JOIN versions v ON v.object_id = o.id AND v.num = o.head`

func scanHead(s scanner) (h objectRow, err error) {
	h.hv, err = scanVersion(withPrefix{s, []any{&h.id, &h.head, &h.siblings}})
	return h, err
}

// withPrefix scans a row's leading columns into pre, the rest into what
// Scan is given.
type withPrefix struct {
	s   scanner
	pre []any
}

func (w withPrefix) Scan(dest ...any) error { return w.s.Scan(append(w.pre, dest...)...) }

// inBatch is how many names (or ids) one query of Prefetch, CachedFiles
// or ChunkLists asks about, and inList the parameters of its IN list.
const inBatch = 100

var inList = `(?` + strings.Repeat(`, ?`, inBatch-1) + `)`

// inBatches calls fn for each batch of up to inBatch of xs with the
// arguments of inList: arg of each, then pad (which no row has) as often
// as needed, so that one prepared statement serves every batch.
func inBatches[T any](xs []T, arg func(T) any, pad any, fn func(batch []T, args []any) error) error {
	args := make([]any, inBatch)
	for start := 0; start < len(xs); start += inBatch {
		batch := xs[start:min(start+inBatch, len(xs))]
		for i := range args {
			args[i] = pad
			if i < len(batch) {
				args[i] = arg(batch[i])
			}
		}
		if err := fn(batch, args); err != nil {
			return err
		}
	}
	return nil
}

// nameArg is a name as inBatches passes it; the empty name, which no
// object has, pads a batch.
func nameArg(n names.Name) any { return n.String() }

// Prefetch reads the objects of names, and finds out which have none, a
// query per hundred names, so that adding a version of each in this
// transaction skips a lookup: a commit of many files asks once per hundred.
// What it read serves the next AddVersion (or Delete) of each name, once;
// the caller must not change those objects otherwise in between.
func (tx *Tx) Prefetch(ctx context.Context, ns []names.Name) (err error) {
	defer func() {
		if err != nil {
			tx.absent, tx.heads = nil, nil // marks of an unanswered query are guesses
		}
	}()
	q := headQuery + ` WHERE o.name IN ` + inList
	if tx.absent == nil {
		tx.absent = make(map[string]struct{})
	}
	if tx.heads == nil {
		tx.heads = make(map[string]objectRow)
	}
	return inBatches(ns, nameArg, "", func(batch []names.Name, args []any) error {
		for _, n := range batch {
			tx.absent[n.String()] = struct{}{} // until the query finds it
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			h, err := scanHead(rows)
			if err != nil {
				return err
			}
			delete(tx.absent, h.hv.Name)
			tx.heads[h.hv.Name] = h
		}
		return rows.Err()
	})
}
