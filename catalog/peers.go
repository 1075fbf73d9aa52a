package catalog

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
)

// Peer is a node this one has pinned.
type Peer struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Addrs    []string  `json:"addrs"`
	Added    time.Time `json:"added"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// PullSeq is how far into the peer's change log this node has applied;
	// Pull is the identity of the change there, as it was read.
	PullSeq int64    `json:"pull_seq"`
	Pull    Identity `json:"pull"`
	// AuditSeq is how far this node's own changes are confirmed identical on
	// the peer (one of this node's origin_seq numbers).
	AuditSeq int64 `json:"audit_seq"`
	// Info is the peer's last heartbeat, as it sent it (JSON).
	Info string `json:"-"`
	// State is the peer's state as the serving node last recorded it.
	State string `json:"state,omitempty"`
}

const peerCols = `id, name, addrs, added, last_seen, pull_seq, info, pull_origin, pull_origin_seq, audit_seq, state`

func scanPeer(s scanner) (Peer, error) {
	var p Peer
	var addrs string
	var added, seen int64
	if err := s.Scan(&p.ID, &p.Name, &addrs, &added, &seen, &p.PullSeq, &p.Info, &p.Pull.Origin, &p.Pull.Seq, &p.AuditSeq, &p.State); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(addrs), &p.Addrs); err != nil {
		return p, fmt.Errorf("peer %s addresses %q: %w", p.ID, addrs, ErrCorrupt)
	}
	p.Added = fromNanos(added)
	if seen != 0 {
		p.LastSeen = fromNanos(seen)
	}
	return p, nil
}

// Peers returns every pinned peer, by ID.
func (c *Catalog) Peers(ctx context.Context) ([]Peer, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT `+peerCols+` FROM peers ORDER BY id`)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []Peer
	for rows.Next() {
		p, err := scanPeer(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, p)
	}
	return out, classify(rows.Err())
}

// PeerByID returns the peer with exactly this ID.
func (c *Catalog) PeerByID(ctx context.Context, id string) (Peer, error) {
	p, err := scanPeer(c.r.QueryRowContext(ctx, `SELECT `+peerCols+` FROM peers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Peer{}, fmt.Errorf("peer %s: %w", id, ErrNotFound)
	}
	return p, classify(err)
}

// FindPeer returns the peer whose ID, ID prefix (at least 4 characters) or
// name is ref. An ambiguous prefix is an error naming the candidates.
func (c *Catalog) FindPeer(ctx context.Context, ref string) (Peer, error) {
	ps, err := c.Peers(ctx)
	if err != nil {
		return Peer{}, err
	}
	var hits []Peer
	for _, p := range ps {
		if p.ID == ref || (p.Name != "" && p.Name == ref) {
			return p, nil
		}
		if len(ref) >= 4 && strings.HasPrefix(p.ID, strings.ToLower(ref)) {
			hits = append(hits, p)
		}
	}
	switch len(hits) {
	case 0:
		return Peer{}, fmt.Errorf("peer %q: %w", ref, ErrNotFound)
	case 1:
		return hits[0], nil
	}
	return Peer{}, fmt.Errorf("peer %q is ambiguous: it starts %d peer IDs", ref, len(hits))
}

// AddPeer pins a peer, or updates the name and addresses of a pinned one
// (keeping its cursor). Empty name or addrs keep what is stored.
func (c *Catalog) AddPeer(ctx context.Context, p Peer) error {
	if _, err := store.ParsePeerID(p.ID); err != nil {
		return err
	}
	addrs, _ := json.Marshal(nonNil(p.Addrs))
	return c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO peers(id, name, addrs, added) VALUES (?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET
				name = CASE WHEN excluded.name != '' THEN excluded.name ELSE name END,
				addrs = CASE WHEN excluded.addrs != '[]' THEN excluded.addrs ELSE addrs END`,
			p.ID, p.Name, string(addrs), nanos(tx.now))
		if err != nil {
			return fmt.Errorf("add peer: %w", err)
		}
		_, err = tx.logChange(ctx, "peer-add", "", 0, p.ID, nil)
		return err
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// RemovePeer unpins a peer and forgets which chunks it held.
func (c *Catalog) RemovePeer(ctx context.Context, id string) error {
	return c.Tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM peers WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("remove peer: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("peer %s: %w", id, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE peer = ?`, id); err != nil {
			return fmt.Errorf("remove peer: %w", err)
		}
		_, err = tx.logChange(ctx, "peer-rm", "", 0, id, nil)
		return err
	})
}

// SeenPeer records when a peer was last heard of, its last heartbeat and
// its state.
func (c *Catalog) SeenPeer(ctx context.Context, id string, at time.Time, info, state string) error {
	return c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE peers SET last_seen = ?, info = ?, state = ? WHERE id = ?`, nanos(at), info, state, id)
		return err
	})
}

// AddInvite stores a pairing secret valid until expires.
func (c *Catalog) AddInvite(ctx context.Context, secret []byte, expires time.Time) error {
	return c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO invites(secret, expires) VALUES (?, ?)`, secret, nanos(expires))
		return err
	})
}

// InvitesPending reports whether an unused invite has not expired yet.
func (c *Catalog) InvitesPending(ctx context.Context, now time.Time) (bool, error) {
	var n int
	err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM invites WHERE used = 0 AND expires > ?`, nanos(now)).Scan(&n)
	return n > 0, classify(err)
}

// ErrInvite means no outstanding invite matches a join.
var ErrInvite = fault.New(fault.Denied, "no valid invite matches")

// UseInvite finds the unexpired, unused invite whose secret makes proof
// (proofOf(secret) equal to proof), marks it used and pins peer, all in one
// transaction, so an invite pairs exactly one node.
func (c *Catalog) UseInvite(ctx context.Context, now time.Time, proof []byte, proofOf func(secret []byte) []byte, peer Peer) error {
	if _, err := store.ParsePeerID(peer.ID); err != nil {
		return err
	}
	return c.Tx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT secret FROM invites WHERE used = 0 AND expires > ?`, nanos(now))
		if err != nil {
			return err
		}
		var match []byte
		for rows.Next() {
			var s []byte
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			if subtle.ConstantTimeCompare(proofOf(s), proof) == 1 {
				match = s
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if match == nil {
			return ErrInvite
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invites SET used = 1 WHERE secret = ?`, match); err != nil {
			return err
		}
		addrs, _ := json.Marshal(nonNil(peer.Addrs))
		if _, err := tx.ExecContext(ctx, `INSERT INTO peers(id, name, addrs, added) VALUES (?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET name = excluded.name, addrs = excluded.addrs`,
			peer.ID, peer.Name, string(addrs), nanos(tx.now)); err != nil {
			return err
		}
		_, err = tx.logChange(ctx, "peer-add", "", 0, peer.ID, nil)
		return err
	})
}

// HeldAmong returns which of ids this node holds.
func (c *Catalog) HeldAmong(ctx context.Context, ids []store.ID) (store.IDSet, error) {
	return among(ctx, c.r, ids, "held = 1 AND")
}

// InUseAmong returns which of ids a version in this catalog references, or
// which are unreferenced but protected by a live write session or became
// unreferenced after since: the answer a peer's garbage collector needs.
func (c *Catalog) InUseAmong(ctx context.Context, ids []store.ID, since time.Time) (store.IDSet, error) {
	out := make(store.IDSet)
	var oldest int64 = -1
	err := c.Tx(ctx, func(tx *Tx) error {
		live, err := tx.LiveSessions(ctx)
		if err != nil {
			return err
		}
		if len(live) > 0 {
			oldest, _ = OldestLive(live)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		var refs int64
		var zeroAt, zeroSeq sql.NullInt64
		err := c.r.QueryRowContext(ctx, `SELECT refs, zero_at, zero_seq FROM chunks WHERE hash = ?`, id[:]).Scan(&refs, &zeroAt, &zeroSeq)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, classify(err)
		}
		if refs > 0 || !zeroAt.Valid || zeroAt.Int64 > nanos(since) || (oldest >= 0 && zeroSeq.Int64 >= oldest) {
			out.Add(id)
		}
	}
	return out, nil
}

// StoreReceived records chunks this node now holds durably, received from a
// peer, and returns how many of them it held already. A chunk no version
// references here is stamped now (a new row, or an old garbage row): the
// sweep gives it the whole grace period for the version that uses it to
// arrive, and the cluster rule keeps it while that version exists anywhere.
func (c *Catalog) StoreReceived(ctx context.Context, refs []ChunkRef) (int, error) {
	had := 0
	err := c.Tx(ctx, func(tx *Tx) error {
		had = 0
		seq, err := lastSeq(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range refs {
			var held bool
			err := tx.QueryRowContext(ctx, `SELECT held FROM chunks WHERE hash = ?`, r.ID[:]).Scan(&held)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if held {
				had++
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO chunks(hash, refs, plain_size, stored_size, zero_at, zero_seq, held)
				VALUES (?, 0, ?, ?, ?, ?, 1)
				ON CONFLICT(hash) DO UPDATE SET held = 1, stored_size = excluded.stored_size,
					zero_at = CASE WHEN refs = 0 THEN excluded.zero_at ELSE zero_at END,
					zero_seq = CASE WHEN refs = 0 THEN excluded.zero_seq ELSE zero_seq END`,
				r.ID[:], r.Plain, r.Stored, nanos(tx.now), seq); err != nil {
				return fmt.Errorf("record chunk %s: %w", r.ID, err)
			}
		}
		return nil
	})
	return had, err
}

// Unhold records that this node no longer holds id (its file was corrupt
// and has been removed); a replica will be fetched.
func (c *Catalog) Unhold(ctx context.Context, id store.ID) error {
	return c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE chunks SET held = 0 WHERE hash = ?`, id[:])
		return err
	})
}

// AddReplicas records that peer confirmed holding ids durably.
func (c *Catalog) AddReplicas(ctx context.Context, peer string, ids []store.ID) error {
	return c.Tx(ctx, func(tx *Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `INSERT INTO replicas(chunk_id, peer, confirmed)
				SELECT id, ?, ? FROM chunks WHERE hash = ?
				ON CONFLICT(chunk_id, peer) DO UPDATE SET confirmed = excluded.confirmed`,
				peer, nanos(tx.now), id[:]); err != nil {
				return fmt.Errorf("record replica: %w", err)
			}
			tx.replicas = replicasSome
		}
		return nil
	})
}

// DropReplicas forgets that peer holds ids (it said it does not).
func (c *Catalog) DropReplicas(ctx context.Context, peer string, ids []store.ID) error {
	return c.Tx(ctx, func(tx *Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE peer = ?
				AND chunk_id = (SELECT id FROM chunks WHERE hash = ?)`, peer, id[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ChunkCopies is a referenced chunk and where its copies are.
type ChunkCopies struct {
	ID     store.ID
	Plain  int64
	Stored int64
	Held   bool     // this node holds it
	Peers  []string // peers that confirmed a copy
}

// EachReferenced calls fn for every chunk some version references, in id
// order, a page at a time, with the peers known to hold it.
func (c *Catalog) EachReferenced(ctx context.Context, fn func(ChunkCopies) error) error {
	return c.eachCopies(ctx, `SELECT c.id, c.hash, c.plain_size, c.stored_size, c.held, `+copiesOf+`
		FROM chunks c WHERE c.id > ? AND c.refs > 0 ORDER BY c.id LIMIT 1000`, nil, fn)
}

// copiesOf is the column of the peers holding chunk c, comma-separated.
const copiesOf = `coalesce((SELECT group_concat(peer) FROM replicas r WHERE r.chunk_id = c.id), '')`

// eachCopies runs a paged query whose rows are (key, hash, plain, stored,
// held, peers), ordered by key; the query's first parameter is the key to
// continue after, arg (if any) its second. It calls fn for every row.
func (c *Catalog) eachCopies(ctx context.Context, query string, arg any, fn func(ChunkCopies) error) error {
	after := int64(-1)
	for {
		args := []any{after}
		if arg != nil {
			args = append(args, arg)
		}
		rows, err := c.r.QueryContext(ctx, query, args...)
		if err != nil {
			return classify(err)
		}
		var page []ChunkCopies
		for rows.Next() {
			var cc ChunkCopies
			var h []byte
			var peers string
			if err := rows.Scan(&after, &h, &cc.Plain, &cc.Stored, &cc.Held, &peers); err != nil {
				rows.Close()
				return classify(err)
			}
			copy(cc.ID[:], h)
			if peers != "" {
				cc.Peers = strings.Split(peers, ",")
			}
			page = append(page, cc)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify(err)
		}
		for _, cc := range page {
			if err := fn(cc); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

// Holders returns the peers that confirmed holding id.
func (c *Catalog) Holders(ctx context.Context, id store.ID) ([]string, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT r.peer FROM replicas r JOIN chunks c ON c.id = r.chunk_id
		WHERE c.hash = ? ORDER BY r.peer`, id[:])
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, classify(err)
		}
		out = append(out, p)
	}
	return out, classify(rows.Err())
}

// HeldTotals counts the chunks this node holds and their stored bytes.
func (c *Catalog) HeldTotals(ctx context.Context) (GarbageTotals, error) {
	var t GarbageTotals
	err := c.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(stored_size), 0) FROM chunks WHERE held = 1`).Scan(&t.Chunks, &t.Bytes)
	return t, classify(err)
}

// HeldRef is what HeldRefs reports of a chunk this node holds.
type HeldRef struct {
	Refs   int64
	Stored int64
}

// HeldRefs returns, for those of ids this node holds, their reference
// count and stored size, inside the transaction.
func (tx *Tx) HeldRefs(ctx context.Context, ids []store.ID) (map[store.ID]HeldRef, error) {
	out := make(map[store.ID]HeldRef, len(ids))
	const per = 500
	for start := 0; start < len(ids); start += per {
		part := ids[start:min(start+per, len(ids))]
		args := make([]any, len(part))
		for i := range part {
			args[i] = part[i][:]
		}
		rows, err := tx.QueryContext(ctx, `SELECT hash, refs, stored_size FROM chunks WHERE held = 1 AND hash IN (?`+
			strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var h []byte
			var r HeldRef
			if err := rows.Scan(&h, &r.Refs, &r.Stored); err != nil {
				rows.Close()
				return nil, err
			}
			out[store.ID(h)] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReplicasOf returns up to limit chunks peer confirmed holding, after the
// chunk row after, and the row to continue from.
func (c *Catalog) ReplicasOf(ctx context.Context, peer string, after int64, limit int) ([]store.ID, int64, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT c.id, c.hash FROM replicas r JOIN chunks c ON c.id = r.chunk_id
		WHERE r.peer = ? AND r.chunk_id > ? ORDER BY r.chunk_id LIMIT ?`, peer, after, limit)
	if err != nil {
		return nil, after, classify(err)
	}
	defer rows.Close()
	var out []store.ID
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&after, &h); err != nil {
			return nil, after, classify(err)
		}
		out = append(out, store.ID(h))
	}
	return out, after, classify(rows.Err())
}

// VersionCopies calls fn with the copies of each chunk of version v, a
// page at a time.
func (c *Catalog) VersionCopies(ctx context.Context, v Version, fn func(ChunkCopies) error) error {
	return c.eachCopies(ctx, `SELECT vc.idx, c.hash, c.plain_size, c.stored_size, c.held, `+copiesOf+`
		FROM version_chunks vc JOIN chunks c ON c.id = vc.chunk_id
		WHERE vc.idx > ? AND vc.version_id = ? ORDER BY vc.idx LIMIT 1000`, v.id, fn)
}
