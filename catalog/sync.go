package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
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
	Kind        Kind      `json:"kind,omitempty"`
	Target      string    `json:"target,omitempty"`
	Meta        string    `json:"meta,omitempty"` // Meta.Encode's form
	// Gone is set when the version no longer exists where it was read
	// (pruned or collected): only its identity travels.
	Gone bool `json:"gone,omitempty"`
	// Hash identifies the change's content, as its origin computed it;
	// empty for changes logged before hashes were.
	Hash []byte `json:"hash,omitempty"`
	// Drop names the versions a "forget" dropped. (A "purge" carries the
	// object's vector in VV: the versions it covers go.)
	Drop []Identity `json:"drop,omitempty"`
}

// Incoming is a version received from a peer that ParseRemote accepted:
// the only form ApplyRemote takes, so nothing unchecked reaches the catalog.
type Incoming struct {
	rv     RemoteVersion
	name   names.Name
	sender string
}

// From records the peer that sent the version. The version's origin is
// the authority on what its changes are: a change it sends over one this
// node holds under the same identity with another content replaces it,
// once that one no longer shows (see ApplyRemote).
func (in Incoming) From(peer string) Incoming {
	in.sender = peer
	return in
}

// Version returns the version as it arrived.
func (in Incoming) Version() RemoteVersion { return in.rv }

// Name returns the object the version is about.
func (in Incoming) Name() names.Name { return in.name }

// ErrBadChange is wrapped by every error of ParseRemote. Its kind is
// fault.Invalid: the peer sent something this node refuses.
var ErrBadChange = fault.New(fault.Invalid, "bad change")

// ParseRemote checks a version received from a peer, once, where it
// enters: its identity, operation, sizes, version vector and name.
func ParseRemote(rv RemoteVersion) (Incoming, error) {
	if err := rv.check(); err != nil {
		return Incoming{}, err
	}
	n, err := names.Parse(rv.Name)
	if err != nil {
		return Incoming{}, fmt.Errorf("%w %s/%d: %w", ErrBadChange, short(rv.Origin), rv.OriginSeq, err)
	}
	return Incoming{rv: rv, name: n}, nil
}

// short cuts an origin from a peer for a message.
func short(s string) string {
	if len(s) > 16 {
		return fmt.Sprintf("%q…", s[:16])
	}
	return fmt.Sprintf("%q", s)
}

func (rv RemoteVersion) check() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w %s/%d: %s", ErrBadChange, short(rv.Origin), rv.OriginSeq, fmt.Sprintf(f, a...))
	}
	switch {
	case rv.Origin == "" || rv.OriginSeq <= 0:
		return bad("no identity")
	case rv.Op != "put" && rv.Op != "delete" && rv.Op != "restore" && rv.Op != "purge" && rv.Op != "forget":
		return bad("unknown operation %q", rv.Op)
	case (rv.Op == "purge" || rv.Op == "forget") && (!rv.Deleted || rv.Size != 0 || rv.Chunks != 0):
		return bad("a %s with content", rv.Op)
	case rv.Op == "forget" && !rv.Gone && (len(rv.Drop) == 0 || len(rv.Drop) > MaxDrop):
		return bad("a forget of %d versions", len(rv.Drop))
	case rv.Op != "forget" && len(rv.Drop) > 0:
		return bad("a %s that names versions to drop", rv.Op)
	case len(rv.VV) > MaxOrigins:
		return bad("version vector too large")
	case rv.Size < 0 || rv.Chunks < 0:
		return bad("negative size")
	case rv.Deleted && (rv.Chunks != 0 || rv.Size != 0 || rv.Kind != KindFile || rv.Target != "" || rv.Meta != ""):
		return bad("a deletion with content")
	}
	if m, err := ParseMeta(rv.Meta); err != nil {
		return bad("%v", err)
	} else if m.Encode() != rv.Meta {
		return bad("object metadata not in its canonical form")
	} else if err := m.checkSize(rv.Size); err != nil {
		return bad("%v", err)
	}
	if err := checkEntry(rv.Kind, rv.Target, rv.Size, rv.Chunks); err != nil {
		return bad("%v", err)
	}
	if err := canonicalOrigin(rv.Origin); err != nil {
		return bad("%v", err)
	}
	for _, d := range rv.Drop {
		if d.Seq <= 0 {
			return bad("forget of version %d", d.Seq)
		}
		if err := canonicalOrigin(d.Origin); err != nil {
			return bad("forget: %v", err)
		}
	}
	if !rv.Gone && rv.VV[rv.Origin] <= 0 && rv.Op != "purge" && rv.Op != "forget" {
		return bad("version vector does not count its own write")
	}
	for k, n := range rv.VV {
		if n <= 0 {
			return bad("version vector entry %q is %d", k, n)
		}
		if err := canonicalOrigin(k); err != nil {
			return bad("version vector: %v", err)
		}
	}
	return nil
}

// canonicalOrigin accepts a node ID in the one spelling the catalog
// compares: changes and vectors match origins as strings.
func canonicalOrigin(s string) error {
	id, err := store.ParsePeerID(s)
	if err != nil {
		return err
	}
	if id.String() != s {
		return fmt.Errorf("node ID %q is not in canonical form", s)
	}
	return nil
}

// Exported is one change of this node's log, for a peer that pulls it.
type Exported struct {
	Seq     int64         `json:"seq"`
	Version RemoteVersion `json:"version"`
}

// ErrCursor means a peer asked for changes after a point of this node's log
// that is not what it read there: the log went back in time (a catalog
// restored from a backup) and the peer must read it again from the start.
var ErrCursor = fault.New(fault.Conflict, "change log cursor does not match")

// ExportChanges returns up to limit object changes after seq after, in log
// order, each with its version as it is now. at is the identity of the
// change at after as the peer read it there (zero: not known); when this
// log holds another change there, the answer is ErrCursor. Changes by
// skipOrigin (the peer asking, which has them) are left out. last is the
// sequence to ask after next time, and lastAt the identity there; they move
// past skipped changes too.
func (c *Catalog) ExportChanges(ctx context.Context, after int64, at Identity, limit int, skipOrigin string) (out []Exported, last int64, lastAt Identity, err error) {
	if after > 0 && at.Origin != "" {
		var got Identity
		err := c.r.QueryRowContext(ctx, `SELECT origin, origin_seq FROM changes WHERE seq = ?`, after).Scan(&got.Origin, &got.Seq)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && got != at) {
			return nil, 0, Identity{}, fmt.Errorf("%w: seq %d", ErrCursor, after)
		}
		if err != nil {
			return nil, 0, Identity{}, classify(err)
		}
	}
	last, lastAt = after, at
	rows, err := c.r.QueryContext(ctx, `SELECT seq, origin, origin_seq, op, name, coalesce(hash, x''), detail FROM changes
		WHERE seq > ? AND op IN ('put', 'delete', 'restore', 'purge', 'forget') ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, 0, Identity{}, classify(err)
	}
	var page []Exported
	var details []string
	for rows.Next() {
		var e Exported
		var detail string
		rv := &e.Version
		if err := rows.Scan(&e.Seq, &rv.Origin, &rv.OriginSeq, &rv.Op, &rv.Name, &rv.Hash, &detail); err != nil {
			rows.Close()
			return nil, 0, Identity{}, classify(err)
		}
		last, lastAt = e.Seq, Identity{rv.Origin, rv.OriginSeq}
		if rv.Origin != skipOrigin {
			page = append(page, e)
			details = append(details, detail)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, Identity{}, classify(err)
	}
	for i, e := range page {
		if rv := &e.Version; rv.Op == "purge" || rv.Op == "forget" {
			// No version of their own: what they drop travels.
			var d dropDetail
			if json.Unmarshal([]byte(details[i]), &d) != nil {
				rv.Gone = true
			}
			rv.Deleted, rv.VV, rv.Drop = true, d.VV, d.Drop
			out = append(out, e)
			continue
		}
		if err := c.fillExported(ctx, &e.Version); err != nil {
			return nil, 0, Identity{}, err
		}
		out = append(out, e)
	}
	return out, last, lastAt, nil
}

// fillExported completes an exported change with its version as it is now.
func (c *Catalog) fillExported(ctx context.Context, rv *RemoteVersion) error {
	v, vv, err := c.versionByIdentity(ctx, c.r, rv.Origin, rv.OriginSeq, rv.Name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// A deletion that lost to a concurrent write is on the frontier
		// without a row: it travels as the frontier knows it.
		if s, ok := c.frontierEntry(ctx, rv.Name, rv.Origin, rv.OriginSeq); ok && s.Deleted {
			rv.Deleted, rv.VV, rv.Created = true, s.VV, fromNanos(s.Created)
			return nil
		}
		rv.Gone = true
	case err != nil:
		return classify(err)
	default:
		rv.Deleted, rv.Size, rv.Mode, rv.MTime = v.Deleted, v.Size, v.Mode, v.MTime
		rv.ContentType, rv.SHA256, rv.Created, rv.VV, rv.Chunks = v.ContentType, v.SHA256, v.Created, vv, v.Chunks
		rv.Kind, rv.Target, rv.Meta = v.Kind, v.Target, v.Meta.Encode()
	}
	return nil
}

// frontierEntry returns the frontier entry of object name with the given
// identity, if it is there.
func (c *Catalog) frontierEntry(ctx context.Context, name, origin string, seq int64) (sibling, bool) {
	var raw string
	if err := c.r.QueryRowContext(ctx, `SELECT siblings FROM objects WHERE name = ?`, name).Scan(&raw); err != nil {
		return sibling{}, false
	}
	var front []sibling
	if json.Unmarshal([]byte(raw), &front) != nil {
		return sibling{}, false
	}
	for _, s := range front {
		if s.same(origin, seq) {
			return s, true
		}
	}
	return sibling{}, false
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
	var meta string
	err := row.Scan(&v.Name, &v.id, &v.Num, &v.Deleted, &v.Size, &v.Mode, &mtime, &v.ContentType,
		&sum, &created, &v.Origin, &v.RestoredFrom, &v.Chunks, &v.Kind, &v.Target, &meta, &vvs)
	if err == nil {
		err = v.finish(mtime, created, sum, meta)
	}
	if err != nil {
		return v, nil, err
	}
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
	// Name is the object the change is about.
	Name string
	// Added is false when the version changed nothing: it was in the
	// object's past, or gone at the source.
	Added bool
	// Conflict names a conflict copy this change made or updated, if any.
	Conflict string
	// Fork: a change with this identity was applied before with another
	// content. Nothing was done; the origin, which reused the identity after
	// its catalog went back in time, gives its own change a new one.
	Fork bool
}

// ApplyRemote applies a version received from a peer. chunks is its whole
// chunk list (empty for tombstones and gone versions). Chunks new to this
// catalog get rows with held = 0: a peer holds them.
//
// Each object keeps its frontier: the versions no known version follows,
// by their version vectors. A version in the frontier's past changes
// nothing; otherwise it joins the frontier and drops what it follows. What
// the object shows is a function of the frontier alone (see resolve): the
// earliest concurrent write keeps the name, each later one is a conflict
// copy named after its node, and a delete loses to a concurrent write. So
// every node that has received the same versions, in whatever order, shows
// the same heads and conflict copies. Versions are added to an object's
// history as they come to show; a conflict copy whose version left the
// frontier (a later write resolved the conflict) is deleted, unless a user
// has written to it since.
func (tx *Tx) ApplyRemote(ctx context.Context, in Incoming, chunks []ChunkRef) (Applied, error) {
	rv := in.rv
	if in.name.IsZero() {
		return Applied{}, fmt.Errorf("apply: %w", ErrBadChange)
	}
	if !rv.Gone && int64(len(chunks)) != rv.Chunks {
		return Applied{}, fault.E(fault.Invalid, "version %s/%d of %s: %d chunk references, want %d", rv.Origin, rv.OriginSeq, rv.Name, len(chunks), rv.Chunks)
	}
	seq, err := tx.logRemote(ctx, rv)
	if errors.Is(err, sql.ErrNoRows) {
		var use reuse
		if use, err = tx.reused(ctx, in); err != nil {
			return Applied{}, err
		}
		if use != superseded {
			return Applied{Duplicate: true, Fork: use == forked, Name: rv.Name}, nil
		}
		seq, err = tx.logRemote(ctx, rv)
	}
	if err != nil {
		return Applied{}, fmt.Errorf("log change: %w", err)
	}
	tx.seq = seq
	ap := Applied{Name: rv.Name}
	if rv.Gone {
		return ap, nil
	}
	if rv.Op == "purge" || rv.Op == "forget" {
		return ap, tx.applyDrop(ctx, rv, seq)
	}
	obj, _, err := tx.object(ctx, rv.Name, true)
	if err != nil {
		return Applied{}, err
	}
	front, err := tx.frontier(ctx, obj)
	if err != nil {
		return Applied{}, err
	}
	for _, s := range front {
		// Equal vectors with another identity are a fork (a catalog that
		// went back in time wrote again): concurrent, not the same write.
		if o := rv.VV.Compare(s.VV); o == Before || (o == Equal && s.same(rv.Origin, rv.OriginSeq)) {
			return ap, nil // already followed by a version here
		}
	}
	me := sibling{Origin: rv.Origin, Seq: rv.OriginSeq, VV: rv.VV, Created: nanos(rv.Created), Deleted: rv.Deleted}
	next := join(front, me)
	if len(next) > MaxSiblings {
		return Applied{}, fault.E(fault.TooLarge, "%s has more than %d concurrent versions", rv.Name, MaxSiblings)
	}
	incoming := func(to int64) error { return tx.insertRemote(ctx, to, rv, chunks, seq) }
	shown, err := tx.show(ctx, obj, in.name, front, next, me, incoming)
	if err != nil {
		return Applied{}, err
	}
	ap.Added, ap.Conflict = shown.added, shown.conflict
	return ap, tx.setFrontier(ctx, obj, next)
}

// logRemote logs a change from a peer under its identity and returns its
// sequence number here; sql.ErrNoRows when the identity is logged already.
func (tx *Tx) logRemote(ctx context.Context, rv RemoteVersion) (int64, error) {
	var hash any
	if len(rv.Hash) > 0 {
		hash = rv.Hash
	}
	detail := "applied"
	if rv.Op == "purge" || rv.Op == "forget" {
		// What it drops, as its origin logged it: this node passes the
		// change on to its own peers from this row.
		b, err := json.Marshal(dropDetail{VV: rv.VV, Drop: rv.Drop})
		if err != nil {
			return 0, err
		}
		detail = string(b)
	}
	var seq int64
	tx.ownNext = 0 // a relayed change may be one of this node's own
	err := tx.QueryRowContext(ctx, `INSERT INTO changes(origin, origin_seq, at, op, name, version, detail, hash)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT(origin, origin_seq) DO NOTHING RETURNING seq`,
		rv.Origin, rv.OriginSeq, nanos(tx.now), rv.Op, rv.Name, detail, hash).Scan(&seq)
	return seq, err
}

// reuse is what a change whose identity is logged already turns out to be.
type reuse int

const (
	sameChange reuse = iota // the change held, or one this node moved to a new identity
	forked                  // another change under the identity: set aside
	superseded              // sent by its origin, and the change held gave way
)

// reused tells what a change whose identity is logged here already is. A
// change sent by its origin supersedes the one held when it can (see
// supersede); the caller then logs it.
func (tx *Tx) reused(ctx context.Context, in Incoming) (reuse, error) {
	rv := in.rv
	held, err := tx.c.logged(ctx, tx, rv.Origin, []int64{rv.OriginSeq})
	if err != nil {
		return 0, err
	}
	if held[rv.OriginSeq].Knows(rv) {
		return sameChange, nil
	}
	if in.sender != rv.Origin || rv.Origin == tx.c.origin {
		return forked, nil
	}
	if ok, err := tx.supersede(ctx, rv.Origin, rv.OriginSeq); err != nil || !ok {
		return forked, err
	}
	return superseded, nil
}

// supersede gives up the change this node holds as (origin, seq) for
// another under the same identity, sent by origin itself: origin's catalog
// went back in time and reused the identity, and has since moved the
// change held here to a new one (TakeBack). It does so only when no
// frontier holds the identity any more, that is once the change under its
// new identity followed it here; the versions it made keep their content
// and place in history, without an identity (nothing asks for them by it).
func (tx *Tx) supersede(ctx context.Context, origin string, seq int64) (bool, error) {
	if fs, err := tx.frontiersWith(ctx, origin, seq); err != nil || len(fs) > 0 {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE versions SET origin = '', origin_seq = 0 WHERE origin = ? AND origin_seq = ?`, origin, seq); err != nil {
		return false, err
	}
	tx.ownNext = 0
	_, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE origin = ? AND origin_seq = ?`, origin, seq)
	return err == nil, err
}

// join adds s to a frontier, dropping the versions s follows.
func join(front []sibling, s sibling) []sibling {
	next := []sibling{}
	for _, f := range front {
		if f.VV.Compare(s.VV) != Before && !f.same(s.Origin, s.Seq) {
			next = append(next, f)
		}
	}
	return append(next, s)
}

type shown struct {
	added    bool   // the incoming version was placed somewhere
	conflict string // the conflict copy it was placed in
}

// show makes object obj (named name) and its conflict copies show what the
// frontier next says, coming from front. me is the incoming version (its
// row does not exist yet: place adds it); every other version shown exists
// as a row already, and is copied.
func (tx *Tx) show(ctx context.Context, obj int64, n names.Name, front, next []sibling, me sibling, place func(obj int64) error) (shown, error) {
	var res shown
	name := n.String()
	put := func(target int64, s sibling) error {
		if s.same(me.Origin, me.Seq) {
			res.added = true
			return place(target)
		}
		v, err := tx.versionByIdentityTx(ctx, s.Origin, s.Seq, name)
		if errors.Is(err, sql.ErrNoRows) && s.Deleted {
			// A deletion that was on the frontier unshown has no row yet.
			return tx.insertTombstone(ctx, target, s)
		}
		if err != nil {
			return fmt.Errorf("version %s/%d of %s: %w", s.Origin, s.Seq, name, err)
		}
		return tx.copyVersion(ctx, v, target)
	}
	winner, copies := resolve(next)
	w := next[winner]
	if hv, ok, err := tx.headIdentity(ctx, obj); err != nil {
		return res, err
	} else if !ok || !hv.same(w.Origin, w.Seq) {
		if err := put(obj, w); err != nil {
			return res, err
		}
	}
	placed := map[string]bool{}
	for _, i := range copies {
		s := next[i]
		cn := ConflictName(n, s.Origin).String()
		placed[cn] = true
		cobj, _, err := tx.object(ctx, cn, true)
		if err != nil {
			return res, err
		}
		hv, ok, err := tx.headIdentity(ctx, cobj)
		if err != nil {
			return res, err
		}
		if ok && hv.same(s.Origin, s.Seq) {
			continue
		}
		if err := put(cobj, s); err != nil {
			return res, err
		}
		cfront, err := tx.frontier(ctx, cobj)
		if err != nil {
			return res, err
		}
		if err := tx.setFrontier(ctx, cobj, join(cfront, s)); err != nil {
			return res, err
		}
		if res.conflict == "" {
			res.conflict = cn
		}
	}
	return res, tx.retireCopies(ctx, n, front, next)
}

// retireCopies deletes the conflict copies of versions that were shown as
// copies with frontier front and are not with next, unless a user wrote to
// the copy since.
func (tx *Tx) retireCopies(ctx context.Context, name names.Name, front, next []sibling) error {
	if len(front) < 2 {
		return nil
	}
	keep := map[string]bool{}
	_, copies := resolve(next)
	for _, i := range copies {
		keep[ConflictName(name, next[i].Origin).String()] = true
	}
	_, was := resolve(front)
	for _, i := range was {
		s := front[i]
		cn := ConflictName(name, s.Origin).String()
		if keep[cn] {
			continue
		}
		cobj, head, err := tx.object(ctx, cn, false)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		hv, ok, err := tx.headIdentity(ctx, cobj)
		if err != nil || !ok || !hv.same(s.Origin, s.Seq) || hv.Deleted {
			continue // written to since, or retired already
		}
		// A deletion that every node derives alike: it has no identity of
		// its own and is not sent to peers.
		num := head + 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, deleted, created, origin, origin_seq, vv)
			VALUES (?, ?, 1, ?, '', 0, '{}')`, cobj, num, nanos(tx.now)); err != nil {
			return fmt.Errorf("retire conflict copy %s: %w", cn, err)
		}
		if err := tx.setHead(ctx, cobj, num, false); err != nil {
			return err
		}
		if _, err := tx.prune(ctx, cobj, num, tx.seq); err != nil {
			return err
		}
	}
	return nil
}

// insertTombstone adds deletion s, known from a frontier, as obj's head.
func (tx *Tx) insertTombstone(ctx context.Context, obj int64, s sibling) error {
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT head FROM objects WHERE id = ?`, obj).Scan(&head); err != nil {
		return err
	}
	num := head + 1
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, deleted, created, origin, origin_seq, vv)
		VALUES (?, ?, 1, ?, ?, ?, ?)`, obj, num, s.Created, s.Origin, s.Seq, s.VV.String()); err != nil {
		return fmt.Errorf("add deletion: %w", err)
	}
	if err := tx.setHead(ctx, obj, num, false); err != nil {
		return err
	}
	_, err := tx.prune(ctx, obj, num, tx.seq)
	return err
}

// headIdentity returns the identity of obj's newest version.
func (tx *Tx) headIdentity(ctx context.Context, obj int64) (sibling, bool, error) {
	var s sibling
	err := tx.QueryRowContext(ctx, `SELECT v.origin, v.origin_seq, v.deleted FROM objects o JOIN versions v
		ON v.object_id = o.id AND v.num = o.head WHERE o.id = ?`, obj).Scan(&s.Origin, &s.Seq, &s.Deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	return s, err == nil, err
}

func (tx *Tx) versionByIdentityTx(ctx context.Context, origin string, seq int64, name string) (Version, error) {
	v, _, err := tx.c.versionByIdentity(ctx, tx, origin, seq, name)
	return v, err
}

// ConflictName is the name of the conflict copy of name written by node
// origin: the short node ID goes before the extension. It is always a valid
// name: a segment or name that would grow too long is shortened, keeping
// the copy in the same directory where possible.
func ConflictName(n names.Name, origin string) names.Name {
	name := n.String()
	short := origin
	if len(short) > 8 {
		short = short[:8]
	}
	dir, base := path.Split(name)
	ext := path.Ext(base)
	if ext == base || len(ext) > 16 {
		ext = ""
	}
	stem := strings.TrimSuffix(base, ext)
	suffix := ".conflict-" + short + ext
	if over := len(stem) + len(suffix) - names.MaxSegment; over > 0 {
		stem = truncateUTF8(stem, len(stem)-over)
	}
	if out, err := names.Parse(dir + stem + suffix); err == nil {
		return out
	}
	sum := sha256.Sum256([]byte(name))
	return names.Must("conflicts/" + hex.EncodeToString(sum[:8]) + ".conflict-" + short)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// insertRemote adds rv as the new head of obj, taking a reference on each
// chunk. seq is the change that brought it; the change row records where
// the version landed when obj is the version's own object.
func (tx *Tx) insertRemote(ctx context.Context, obj int64, rv RemoteVersion, chunks []ChunkRef, seq int64) error {
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT head FROM objects WHERE id = ?`, obj).Scan(&head); err != nil {
		return err
	}
	num := head + 1
	var sum []byte
	if !rv.Deleted {
		sum = rv.SHA256[:]
	}
	for _, ref := range chunks {
		if err := ref.Check(); err != nil {
			return fmt.Errorf("version %s/%d: %w", rv.Origin, rv.OriginSeq, err)
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, deleted, size, mode, mtime, content_type, sha256, created, origin, origin_seq, vv, kind, target, meta)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		obj, num, rv.Deleted, rv.Size, rv.Mode, rv.MTime.UnixNano(), rv.ContentType, sum, nanos(rv.Created), rv.Origin, rv.OriginSeq, rv.VV.String(), rv.Kind, rv.Target, rv.Meta)
	if err != nil {
		return fmt.Errorf("add version: %w", err)
	}
	vid, _ := res.LastInsertId()
	ids := make([]int64, len(chunks))
	for i, ref := range chunks {
		var refs int64
		err := tx.QueryRowContext(ctx, `INSERT INTO chunks(hash, refs, plain_size, stored_size, held)
			VALUES (?, 1, ?, ?, 0)
			ON CONFLICT(hash) DO UPDATE SET refs = refs + 1, zero_at = NULL, zero_seq = NULL
			RETURNING id, refs`, ref.ID[:], ref.Plain, ref.Stored).Scan(&ids[i], &refs)
		if err != nil {
			return fmt.Errorf("reference chunk %s: %w", ref.ID, err)
		}
		if refs == 1 {
			if err := tx.forgetReplicas(ctx, ids[i]); err != nil {
				return err
			}
		}
	}
	if err := tx.insertVersionChunks(ctx, vid, ids); err != nil {
		return err
	}
	if err := tx.setHead(ctx, obj, num, !rv.Deleted); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE changes SET version = ? WHERE seq = ? AND name = (SELECT name FROM objects WHERE id = ?)`, num, seq, obj); err != nil {
		return err
	}
	_, err = tx.prune(ctx, obj, num, seq)
	return err
}

// forgetReplicas drops what this node knew of peers' copies of a chunk
// that was unreferenced until now: peers may have collected them since.
func (tx *Tx) forgetReplicas(ctx context.Context, chunk int64) error {
	if tx.replicas == replicasUnknown {
		var any bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM replicas)`).Scan(&any); err != nil {
			return err
		}
		tx.replicas = replicasNone
		if any {
			tx.replicas = replicasSome
		}
	}
	if tx.replicas == replicasNone {
		return nil // a node without peers: a first put of many chunks asks once
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE chunk_id = ?`, chunk)
	return err
}

// copyVersion adds version v, with its identity and chunks, as the head of
// object obj.
func (tx *Tx) copyVersion(ctx context.Context, v Version, obj int64) error {
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT head FROM objects WHERE id = ?`, obj).Scan(&head); err != nil {
		return err
	}
	num := head + 1
	res, err := tx.ExecContext(ctx, `INSERT INTO versions(object_id, num, deleted, size, mode, mtime, content_type, sha256, created, origin, origin_seq, vv, kind, target, meta)
		SELECT ?, ?, deleted, size, mode, mtime, content_type, sha256, created, origin, origin_seq, vv, kind, target, meta FROM versions WHERE id = ?`,
		obj, num, v.id)
	if err != nil {
		return fmt.Errorf("copy version: %w", err)
	}
	vid, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `INSERT INTO version_chunks(version_id, idx, chunk_id)
		SELECT ?, idx, chunk_id FROM version_chunks WHERE version_id = ?`, vid, v.id); err != nil {
		return fmt.Errorf("copy version chunks: %w", err)
	}
	// The source version still holds its references, so nothing is revived.
	if _, err := tx.ExecContext(ctx, `UPDATE chunks SET refs = refs + vc.n
		FROM (SELECT chunk_id, count(*) AS n FROM version_chunks WHERE version_id = ? GROUP BY chunk_id) AS vc
		WHERE chunks.id = vc.chunk_id`, v.id); err != nil {
		return fmt.Errorf("copy version references: %w", err)
	}
	if err := tx.setHead(ctx, obj, num, !v.Deleted); err != nil {
		return err
	}
	_, err = tx.prune(ctx, obj, num, tx.seq)
	return err
}

// SetPull records how far into peer's change log this node has applied:
// seq, and the identity of the change there.
func (tx *Tx) SetPull(ctx context.Context, peer string, seq int64, at Identity) error {
	_, err := tx.ExecContext(ctx, `UPDATE peers SET pull_seq = ?, pull_origin = ?, pull_origin_seq = ? WHERE id = ?`,
		seq, at.Origin, at.Seq, peer)
	return err
}

// Savepoint runs fn in a nested transaction: if fn fails, what it did is
// undone and the enclosing transaction goes on.
func (tx *Tx) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := tx.conn.ExecContext(ctx, `SAVEPOINT apply`); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := tx.conn.ExecContext(ctx, `ROLLBACK TO apply`); rerr != nil {
			return errors.Join(err, rerr)
		}
		tx.conn.ExecContext(ctx, `RELEASE apply`)
		return err
	}
	_, err := tx.conn.ExecContext(ctx, `RELEASE apply`)
	return err
}
