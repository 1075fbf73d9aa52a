package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
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
func contentHash(op, name string, deleted bool, size int64, mode uint32, mtime int64, ctype string, sum []byte, created int64) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%t\x00%d\x00%d\x00%d\x00%s\x00%x\x00%d", op, name, deleted, size, mode, mtime, ctype, sum, created)
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

// Logged is what a catalog holds of a change: its operation and content
// hash (empty when not recorded).
type Logged struct {
	Op   string
	Hash []byte
}

// Same reports whether rv, received from a peer, is the change l: the same
// operation and, where both have one, the same hash. Any other change under
// the same identity is a fork. (Changes logged before hashes were cannot be
// told apart by more than their operation.)
func (l Logged) Same(rv RemoteVersion) bool {
	return l.Op == rv.Op && (len(l.Hash) == 0 || len(rv.Hash) == 0 || bytes.Equal(l.Hash, rv.Hash))
}

// Logged returns what this catalog holds of origin's changes numbered seqs,
// for those it holds.
func (c *Catalog) Logged(ctx context.Context, origin string, seqs []int64) (map[int64]Logged, error) {
	return logged(ctx, c.r, origin, seqs)
}

func logged(ctx context.Context, q querier, origin string, seqs []int64) (map[int64]Logged, error) {
	out := make(map[int64]Logged, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	args := []any{origin}
	marks := make([]string, len(seqs))
	for i, s := range seqs {
		marks[i] = "?"
		args = append(args, s)
	}
	rows, err := q.QueryContext(ctx, `SELECT origin_seq, op, coalesce(hash, x'') FROM changes
		WHERE origin = ? AND origin_seq IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		var l Logged
		if err := rows.Scan(&s, &l.Op, &l.Hash); err != nil {
			return nil, classify(err)
		}
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
// catalog had lost, and continues after them.
//
// The catalog may have written changes of its own since it went back in
// time (forked: numbered from where the older catalog stopped). Each forked
// change that reused the identity of a lost one, or that wrote an object the
// lost history wrote too, moves to a new identity after every one known,
// and such a write gets a vector that follows the lost versions of its
// object: it was written later, and shows as the newest (the lost versions
// stay in the history of the peers that had them). Then the lost changes
// are applied as any change from a peer. Nothing is dropped: every change
// of either history keeps an identity of its own, and peers that saw the
// reused identity with the other content (Applied.Fork) receive the forked
// change again under its new one.
func (tx *Tx) TakeBack(ctx context.Context, lost []Lost) (Taken, error) {
	var taken Taken
	if len(lost) == 0 {
		return taken, nil
	}
	me := tx.c.origin
	slices.SortFunc(lost, func(a, b Lost) int { return int(a.In.rv.OriginSeq - b.In.rv.OriginSeq) })
	first := lost[0].In.rv.OriginSeq
	top := lost[len(lost)-1].In.rv.OriginSeq
	lostSeqs := make([]int64, len(lost))
	lostNames := map[string]VV{}
	for i, l := range lost {
		rv := l.In.rv
		if rv.Origin != me {
			return taken, fmt.Errorf("take back: change %s/%d is not this node's", rv.Origin, rv.OriginSeq)
		}
		lostSeqs[i] = rv.OriginSeq
		if !rv.Gone {
			lostNames[rv.Name] = lostNames[rv.Name].Merge(rv.VV)
		}
	}
	held, err := logged(ctx, tx, me, lostSeqs)
	if err != nil {
		return taken, err
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
	count := map[string]int64{} // per object: the vector count for me last given
	for _, f := range fork {
		_, collides := held[f.originSeq]
		lostVV, written := lostNames[f.name]
		if !collides && !written {
			continue
		}
		to := next
		next++
		base := max(lostVV[me], count[f.name])
		raise := func(v VV) VV {
			if !written {
				return v
			}
			out := v.Merge(lostVV)
			out[me] = max(v[me], base) + 1
			return out
		}
		vv, err := tx.reissue(ctx, f.originSeq, to, raise)
		if err != nil {
			return taken, err
		}
		count[f.name] = max(count[f.name], vv[me])
		if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq = ?`, f.seq); err != nil {
			return taken, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO changes(origin, origin_seq, at, op, name, version, detail, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, me, to, f.at, f.op, f.name, f.version, f.detail, f.hash); err != nil {
			return taken, fmt.Errorf("renumber change %d: %w", f.originSeq, err)
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

// nextOwnSeq returns the origin_seq this node's next change gets.
func (tx *Tx) nextOwnSeq(ctx context.Context) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT coalesce(max(origin_seq), 0) + 1 FROM changes WHERE origin = ?`, tx.c.origin).Scan(&n)
	return n, err
}

// reissue moves the versions with identity (this node, from) to (this
// node, to), their vectors through raise, in the version rows and in the
// frontiers that hold them. It returns the new vector.
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
	// Frontiers name the identity (the object's, and its conflict copies').
	objs, err := tx.QueryContext(ctx, `SELECT id, siblings FROM objects WHERE siblings LIKE ?`, `%"s":`+strconv.FormatInt(from, 10)+`%`)
	if err != nil {
		return nil, err
	}
	type obj struct {
		id   int64
		sibs string
	}
	var os []obj
	for objs.Next() {
		var o obj
		if err := objs.Scan(&o.id, &o.sibs); err != nil {
			objs.Close()
			return nil, err
		}
		os = append(os, o)
	}
	objs.Close()
	if err := objs.Err(); err != nil {
		return nil, err
	}
	for _, o := range os {
		var front []sibling
		if err := json.Unmarshal([]byte(o.sibs), &front); err != nil {
			return nil, fmt.Errorf("object %d frontier: %w", o.id, ErrCorrupt)
		}
		changed := false
		for i := range front {
			if front[i].same(me, from) {
				front[i].Seq, front[i].VV = to, raise(front[i].VV)
				changed = true
			}
		}
		if changed {
			if err := tx.setFrontier(ctx, o.id, front); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// SetAudit records how far this node's own history is confirmed identical
// on peer.
func (tx *Tx) SetAudit(ctx context.Context, peer string, seq int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE peers SET audit_seq = max(audit_seq, ?) WHERE id = ?`, seq, peer)
	return err
}

// OwnMax returns the highest origin_seq of this node's own changes.
func (c *Catalog) OwnMax(ctx context.Context) (int64, error) {
	var n int64
	err := c.r.QueryRowContext(ctx, `SELECT coalesce(max(origin_seq), 0) FROM changes WHERE origin = ?`, c.origin).Scan(&n)
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
