package catalog

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loftstore/loft/names"
)

// Identity names a change across the cluster: the node that made it and
// its number there.
type Identity struct {
	Origin string `json:"origin"`
	Seq    int64  `json:"origin_seq"`
}

// contentHash identifies what a change did: everything of its version but
// its identity and vector. Two changes with one identity and different
// hashes are a fork, which only a catalog that went back in time makes.
func contentHash(op, name string, deleted bool, size int64, mode uint32, mtime int64, ctype string, sum []byte, created int64, kind Kind, target, meta string) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%t\x00%d\x00%d\x00%d\x00%s\x00%x\x00%d", op, name, deleted, size, mode, mtime, ctype, sum, created)
	if kind != KindFile {
		// Appended only for directories and links, so the hashes of files
		// stay what they were before kinds existed.
		fmt.Fprintf(h, "\x00%s\x00%s", kind, target)
	}
	if meta != "" {
		// Likewise only for versions with metadata (S3's puts).
		fmt.Fprintf(h, "\x00meta\x00%s", meta)
	}
	return h.Sum(nil)[:16]
}

// ExportOrigin returns up to limit of origin's changes with an origin_seq
// above after, in origin_seq order, each with its version as it is now:
// what this node holds of origin's history, for origin to compare with its
// own (see TakeBack). last is the highest origin_seq returned.
func (c *Catalog) ExportOrigin(ctx context.Context, origin string, after int64, limit int) (out []Exported, last int64, err error) {
	rows, err := c.r.QueryContext(ctx, `SELECT seq, origin, origin_seq, op, name, coalesce(hash, x'') FROM changes
		WHERE origin = ? AND origin_seq > ? AND op IN ('put', 'delete', 'restore') ORDER BY origin_seq LIMIT ?`, origin, after, limit)
	if err != nil {
		return nil, 0, classify(err)
	}
	for rows.Next() {
		var e Exported
		rv := &e.Version
		if err := rows.Scan(&e.Seq, &rv.Origin, &rv.OriginSeq, &rv.Op, &rv.Name, &rv.Hash); err != nil {
			rows.Close()
			return nil, 0, classify(err)
		}
		out = append(out, e)
		last = rv.OriginSeq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, classify(err)
	}
	for i := range out {
		if err := c.fillExported(ctx, &out[i].Version); err != nil {
			return nil, 0, err
		}
	}
	return out, last, nil
}

// Logged is what a catalog holds of a change: its operation, object and
// content hash (empty when not recorded), and for an identity of this
// node's own, the content hashes of changes TakeBack moved away from it.
type Logged struct {
	Op    string
	Name  string
	Hash  []byte
	moved [][]byte
}

// Same reports whether rv, received from a peer, is the change l: the same
// operation and content hash (which covers the object's name), or for a
// change logged before hashes were, the same operation on the same object.
// Any other change under the same identity is a fork.
func (l Logged) Same(rv RemoteVersion) bool {
	if l.Op == "" || l.Op != rv.Op {
		return false
	}
	if len(l.Hash) > 0 && len(rv.Hash) > 0 {
		return bytes.Equal(l.Hash, rv.Hash)
	}
	return l.Name == rv.Name
}

// Knows reports whether rv is the change l, or a change this node moved to
// a new identity (a peer's copy under the old one is neither lost nor a
// fork: it has the change under its new identity too, or will).
func (l Logged) Knows(rv RemoteVersion) bool {
	if l.Same(rv) {
		return true
	}
	for _, h := range l.moved {
		if len(rv.Hash) > 0 && bytes.Equal(h, rv.Hash) {
			return true
		}
	}
	return false
}

// Logged returns what this catalog holds of origin's changes numbered seqs,
// for those it holds or, of its own, moved.
func (c *Catalog) Logged(ctx context.Context, origin string, seqs []int64) (map[int64]Logged, error) {
	return c.logged(ctx, c.r, origin, seqs)
}

func (c *Catalog) logged(ctx context.Context, q querier, origin string, seqs []int64) (map[int64]Logged, error) {
	out := make(map[int64]Logged, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	args := make([]any, len(seqs))
	marks := make([]string, len(seqs))
	for i, s := range seqs {
		marks[i] = "?"
		args[i] = s
	}
	in := "(" + strings.Join(marks, ",") + ")"
	rows, err := q.QueryContext(ctx, `SELECT origin_seq, op, name, coalesce(hash, x'') FROM changes
		WHERE origin = ? AND origin_seq IN `+in, append([]any{origin}, args...)...)
	if err != nil {
		return nil, classify(err)
	}
	for rows.Next() {
		var s int64
		var l Logged
		if err := rows.Scan(&s, &l.Op, &l.Name, &l.Hash); err != nil {
			rows.Close()
			return nil, classify(err)
		}
		out[s] = l
	}
	rows.Close()
	if err := rows.Err(); err != nil || origin != c.origin {
		return out, classify(err)
	}
	rows, err = q.QueryContext(ctx, `SELECT origin_seq, hash FROM renumbered WHERE origin_seq IN `+in, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		var h []byte
		if err := rows.Scan(&s, &h); err != nil {
			return nil, classify(err)
		}
		l := out[s]
		l.moved = append(l.moved, h)
		out[s] = l
	}
	return out, classify(rows.Err())
}

// Lost is a change of this node's own that a peer holds and this catalog
// lost: a catalog restored from a backup, or a WAL SQLite dropped. Chunks
// is its chunk list.
type Lost struct {
	In     Incoming
	Chunks []ChunkRef
}

// Reissue is a change of this node's own that TakeBack moved to a new
// identity.
type Reissue struct {
	Name string `json:"name"`
	From int64  `json:"from"`
	To   int64  `json:"to"`
}

// Taken reports what TakeBack did.
type Taken struct {
	Applied  int       `json:"taken_back"`
	Reissued []Reissue `json:"renumbered"`
}

// TakeBack puts back this node's own changes that a peer held and this
// catalog had lost, and continues after them. high is the highest of this
// node's change numbers the peer holds: no change of this node's is
// numbered at or below it from now on, so none reuses an identity the peer
// has yet to show (the audit reads a page at a time).
//
// The catalog may have written changes of its own since it went back in
// time (forked: numbered from where the older catalog stopped). Each forked
// change that reused the identity of a lost one, or that wrote an object the
// lost history wrote too, moves to a new identity after every one known.
// Its vector moves past every count of this node's on its object (and
// follows the lost versions of the object): it was written later, and a
// peer that holds it under the old identity sees the new one follow it, not
// a concurrent write. The move is recorded, so that copy is not taken for
// a lost change or a fork. Then the lost changes are applied as any change
// from a peer. Nothing is dropped: every change of either history keeps an
// identity of its own.
//
// Lost changes this catalog holds already (another audit took them back
// first) are skipped, so TakeBack can run for each peer in turn.
func (tx *Tx) TakeBack(ctx context.Context, lost []Lost, high int64) (Taken, error) {
	var taken Taken
	me := tx.c.origin
	if err := tx.raiseFloor(ctx, high); err != nil {
		return taken, err
	}
	seqs := make([]int64, len(lost))
	for i, l := range lost {
		if rv := l.In.rv; rv.Origin != me {
			return taken, fmt.Errorf("take back: change %s/%d is not this node's", rv.Origin, rv.OriginSeq)
		}
		seqs[i] = l.In.rv.OriginSeq
	}
	held, err := tx.c.logged(ctx, tx, me, seqs)
	if err != nil {
		return taken, err
	}
	lost = slices.DeleteFunc(slices.Clone(lost), func(l Lost) bool { return held[l.In.rv.OriginSeq].Knows(l.In.rv) })
	if len(lost) == 0 {
		return taken, nil
	}
	slices.SortFunc(lost, func(a, b Lost) int { return cmp.Compare(a.In.rv.OriginSeq, b.In.rv.OriginSeq) })
	first := lost[0].In.rv.OriginSeq
	top := lost[len(lost)-1].In.rv.OriginSeq
	lostNames := map[string]VV{}
	for _, l := range lost {
		if rv := l.In.rv; !rv.Gone {
			lostNames[rv.Name] = lostNames[rv.Name].Merge(rv.VV)
		}
	}
	// This node's own changes since the first lost one: the forked history.
	type forked struct {
		seq, originSeq int64
		op, name       string
		at, version    int64
		detail         string
		hash           []byte
	}
	var fork []forked
	rows, err := tx.QueryContext(ctx, `SELECT seq, origin_seq, op, name, at, version, detail, coalesce(hash, x'') FROM changes
		WHERE origin = ? AND origin_seq >= ? ORDER BY origin_seq`, me, first)
	if err != nil {
		return taken, err
	}
	for rows.Next() {
		var f forked
		if err := rows.Scan(&f.seq, &f.originSeq, &f.op, &f.name, &f.at, &f.version, &f.detail, &f.hash); err != nil {
			rows.Close()
			return taken, err
		}
		fork = append(fork, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return taken, err
	}
	next, err := tx.nextOwnSeq(ctx)
	if err != nil {
		return taken, err
	}
	next = max(next, top+1)
	count := map[string]int64{} // per object: the count for me last given
	for _, f := range fork {
		collides := held[f.originSeq].Op != ""
		lostVV, written := lostNames[f.name]
		if !collides && !written {
			continue
		}
		if _, ok := count[f.name]; !ok {
			if count[f.name], err = tx.ownCount(ctx, f.name); err != nil {
				return taken, err
			}
		}
		base := max(lostVV[me], count[f.name])
		raise := func(v VV) VV {
			out := v.Merge(lostVV)
			out[me] = max(v[me], base) + 1
			return out
		}
		to := next
		next++
		vv, err := tx.reissue(ctx, f.originSeq, to, raise)
		if err != nil {
			return taken, err
		}
		count[f.name] = max(count[f.name], vv[me], base+1)
		if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq = ?`, f.seq); err != nil {
			return taken, err
		}
		tx.ownNext = 0
		if _, err := tx.ExecContext(ctx, `INSERT INTO changes(origin, origin_seq, at, op, name, version, detail, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, me, to, f.at, f.op, f.name, f.version, f.detail, f.hash); err != nil {
			return taken, fmt.Errorf("renumber change %d: %w", f.originSeq, err)
		}
		if len(f.hash) > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO renumbered(origin_seq, hash, to_seq) VALUES (?, ?, ?)
				ON CONFLICT DO UPDATE SET to_seq = excluded.to_seq`, f.originSeq, f.hash, to); err != nil {
				return taken, err
			}
		}
		taken.Reissued = append(taken.Reissued, Reissue{Name: f.name, From: f.originSeq, To: to})
	}
	for _, l := range lost {
		ap, err := tx.ApplyRemote(ctx, l.In, l.Chunks)
		if err != nil {
			return taken, fmt.Errorf("take back change %d: %w", l.In.rv.OriginSeq, err)
		}
		if !ap.Duplicate {
			taken.Applied++
		}
	}
	return taken, nil
}

// seqFloor is the meta key below which this node numbers no change of its
// own (see TakeBack).
const seqFloor = "own_seq_floor"

// raiseFloor keeps this node's next changes above n.
func (tx *Tx) raiseFloor(ctx context.Context, n int64) error {
	tx.ownNext = 0
	_, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)`, seqFloor, n)
	return err
}

// nextOwnSeq returns the origin_seq this node's next change gets.
func (tx *Tx) nextOwnSeq(ctx context.Context) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT `+nextOwnSeqExpr, tx.c.origin, seqFloor).Scan(&n)
	return n, err
}

// nextOwnSeqExpr computes the next origin_seq of origin ?1, with the floor
// at meta key ?2.
const nextOwnSeqExpr = `max((SELECT coalesce(max(origin_seq), 0) FROM changes WHERE origin = ?1),
	(SELECT coalesce(max(CAST(value AS INTEGER)), 0) FROM meta WHERE key = ?2)) + 1`

// ownCount returns the highest count of this node's in the vectors of
// object name's frontier.
func (tx *Tx) ownCount(ctx context.Context, name string) (int64, error) {
	var obj int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM objects WHERE name = ?`, name).Scan(&obj)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	front, err := tx.frontier(ctx, obj)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, s := range front {
		n = max(n, s.VV[tx.c.origin])
	}
	return n, nil
}

// reissue moves the versions with identity (this node, from) to (this
// node, to), their vectors through raise, in the version rows and in the
// frontiers that hold them; a raised version may now follow others of its
// frontier, which leave it (and their conflict copies go). It returns the
// new vector.
func (tx *Tx) reissue(ctx context.Context, from, to int64, raise func(VV) VV) (VV, error) {
	me := tx.c.origin
	rows, err := tx.QueryContext(ctx, `SELECT id, vv FROM versions WHERE origin = ? AND origin_seq = ?`, me, from)
	if err != nil {
		return nil, err
	}
	type row struct {
		id int64
		vv string
	}
	var vs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.vv); err != nil {
			rows.Close()
			return nil, err
		}
		vs = append(vs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out VV
	for _, r := range vs {
		vv, err := ParseVV(r.vv)
		if err != nil {
			return nil, err
		}
		out = raise(vv)
		if _, err := tx.ExecContext(ctx, `UPDATE versions SET origin_seq = ?, vv = ? WHERE id = ?`, to, out.String(), r.id); err != nil {
			return nil, err
		}
	}
	os, err := tx.frontiersWith(ctx, me, from)
	if err != nil {
		return nil, err
	}
	for _, o := range os {
		for i := range o.front {
			if o.front[i].same(me, from) {
				o.front[i].Seq, o.front[i].VV = to, raise(o.front[i].VV)
				out = o.front[i].VV
			}
		}
		next := maximal(o.front)
		if len(next) < len(o.front) {
			n, err := names.Parse(o.name)
			if err != nil {
				return nil, fmt.Errorf("object %d: %w", o.id, ErrCorrupt)
			}
			none := sibling{Origin: "\x00"} // every version shown has a row
			if _, err := tx.show(ctx, o.id, n, o.front, next, none, nil); err != nil {
				return nil, err
			}
		}
		if err := tx.setFrontier(ctx, o.id, next); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// frontierOf is an object's frontier.
type frontierOf struct {
	id    int64
	name  string
	front []sibling
}

// frontiersWith returns the frontiers that hold identity (origin, seq).
func (tx *Tx) frontiersWith(ctx context.Context, origin string, seq int64) ([]frontierOf, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, name, siblings FROM objects WHERE siblings LIKE ?`, `%"s":`+strconv.FormatInt(seq, 10)+`%`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []frontierOf
	for rows.Next() {
		var f frontierOf
		var raw string
		if err := rows.Scan(&f.id, &f.name, &raw); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &f.front); err != nil {
			return nil, fmt.Errorf("object %d frontier: %w", f.id, ErrCorrupt)
		}
		if slices.ContainsFunc(f.front, func(s sibling) bool { return s.same(origin, seq) }) {
			out = append(out, f)
		}
	}
	return out, rows.Err()
}

// maximal returns the versions of front that no other one follows.
func maximal(front []sibling) []sibling {
	out := []sibling{}
	for i, s := range front {
		followed := false
		for j, t := range front {
			if i != j && s.VV.Compare(t.VV) == Before {
				followed = true
				break
			}
		}
		if !followed {
			out = append(out, s)
		}
	}
	return out
}

// SetAudit records how far this node's own history is confirmed identical
// on peer.
func (tx *Tx) SetAudit(ctx context.Context, peer string, seq int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE peers SET audit_seq = max(audit_seq, ?) WHERE id = ?`, seq, peer)
	return err
}

// Highest returns the highest origin_seq of origin's changes this catalog
// holds.
func (c *Catalog) Highest(ctx context.Context, origin string) (int64, error) {
	var n int64
	err := c.r.QueryRowContext(ctx, `SELECT coalesce(max(origin_seq), 0) FROM changes WHERE origin = ?`, origin).Scan(&n)
	return n, classify(err)
}

// Kinds of history events.
const (
	// HistoryRewound: this node's catalog had gone back in time; the changes
	// it lost were taken back from a peer, and its own later ones renumbered.
	HistoryRewound = "rewound"
	// HistoryFork: a peer sent a change with an identity this node had
	// applied with another content; it was set aside (the origin renumbers).
	HistoryFork = "fork"
	// HistoryLogReset: a peer's change log went back in time; this node
	// reads it again from the start.
	HistoryLogReset = "peer-log-rewound"
)

// DescribeHistory says in words what a kind of history event means.
func DescribeHistory(kind string) string {
	switch kind {
	case HistoryRewound:
		return "this node's catalog had gone back in time: took back from a peer the changes it lost"
	case HistoryFork:
		return "a peer reused change identities with other content: set aside until their origin renumbers them"
	case HistoryLogReset:
		return "a peer's change log went back in time: read again from the start"
	}
	return kind
}

// HistoryEvent is one thing that happened to this node's history.
type HistoryEvent struct {
	At     time.Time       `json:"at"`
	Kind   string          `json:"kind"`
	Peer   string          `json:"peer,omitempty"`
	Detail json.RawMessage `json:"detail"`
}

// RecordHistory adds an event; detail is encoded as JSON.
func (tx *Tx) RecordHistory(ctx context.Context, kind, peer string, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO history(at, kind, peer, detail) VALUES (?, ?, ?, ?)`, nanos(tx.now), kind, peer, string(b))
	return err
}

// History returns the number of events and the newest limit, newest first.
func (c *Catalog) History(ctx context.Context, limit int) (int64, []HistoryEvent, error) {
	var total int64
	if err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM history`).Scan(&total); err != nil {
		return 0, nil, classify(err)
	}
	rows, err := c.r.QueryContext(ctx, `SELECT at, kind, peer, detail FROM history ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return 0, nil, classify(err)
	}
	defer rows.Close()
	out := []HistoryEvent{}
	for rows.Next() {
		var e HistoryEvent
		var at int64
		var detail string
		if err := rows.Scan(&at, &e.Kind, &e.Peer, &detail); err != nil {
			return 0, nil, classify(err)
		}
		e.At, e.Detail = fromNanos(at), json.RawMessage(detail)
		out = append(out, e)
	}
	return total, out, classify(rows.Err())
}
