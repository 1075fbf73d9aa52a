package catalog

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
)

// Upload is a multipart upload in progress: parts stored as chunks as
// they arrive, referenced until the upload completes into a version of
// Name or is aborted.
type Upload struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Created     time.Time `json:"created"`
	Touched     time.Time `json:"touched"` // the last part's arrival
	ContentType string    `json:"content_type,omitempty"`
	Meta        Meta      `json:"meta,omitzero"`
}

// Part is one part of an upload.
type Part struct {
	Num     int       `json:"num"`
	Size    int64     `json:"size"`
	ETag    string    `json:"etag"` // hex MD5 of the part, no quotes
	Created time.Time `json:"created"`
}

// The bounds of S3's multipart uploads.
const (
	MaxParts = 10000
	MinPart  = 5 << 20 // every part but the last
)

var (
	// ErrNoUpload means the upload does not exist: never made, completed
	// or aborted.
	ErrNoUpload = fault.New(fault.NotFound, "no such upload")
	// ErrBadPart means a completion named a part that is not there, or
	// with another ETag, or parts out of order.
	ErrBadPart = fault.New(fault.Invalid, "bad part list")
	// ErrPartTooSmall means a part other than the last is under MinPart.
	ErrPartTooSmall = fault.New(fault.Invalid, "part too small")
)

// CreateUpload records a new upload.
func (c *Catalog) CreateUpload(ctx context.Context, u Upload) error {
	if err := u.Meta.Check(); err != nil {
		return err
	}
	return c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO uploads(id, name, created, touched, content_type, meta) VALUES (?, ?, ?, ?, ?, ?)`,
			u.ID, u.Name, nanos(tx.now), nanos(tx.now), u.ContentType, u.Meta.Encode())
		return err
	})
}

// Upload returns an upload; an unknown one is ErrNoUpload.
func (c *Catalog) Upload(ctx context.Context, id string) (Upload, error) {
	return upload(ctx, c.r, id)
}

func upload(ctx context.Context, q querier, id string) (Upload, error) {
	var u Upload
	var created, touched int64
	var meta string
	err := q.QueryRowContext(ctx, `SELECT id, name, created, touched, content_type, meta FROM uploads WHERE id = ?`, id).
		Scan(&u.ID, &u.Name, &created, &touched, &u.ContentType, &meta)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("upload %s: %w", id, ErrNoUpload)
	}
	if err != nil {
		return u, classify(err)
	}
	u.Created, u.Touched = fromNanos(created), fromNanos(touched)
	if u.Meta, err = ParseMeta(meta); err != nil {
		return u, fmt.Errorf("%w: upload %s: %w", ErrCorrupt, id, err)
	}
	return u, nil
}

// Uploads returns up to limit uploads whose names lie in [lo, hi) (hi ""
// for no bound), by name and then ID, starting after (name, id).
func (c *Catalog) Uploads(ctx context.Context, lo, hi, afterName, afterID string, limit int) ([]Upload, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT id FROM uploads
		WHERE name >= ?1 AND (?2 = '' OR name < ?2) AND (name > ?3 OR name = ?3 AND id > ?4)
		ORDER BY name, id LIMIT ?5`, lo, hi, afterName, afterID, limit)
	if err != nil {
		return nil, classify(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, classify(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]Upload, 0, len(ids))
	for _, id := range ids {
		u, err := c.Upload(ctx, id)
		if errors.Is(err, ErrNoUpload) {
			continue // completed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, classify(rows.Err())
}

// Parts returns up to limit parts of an upload with numbers above after.
func (c *Catalog) Parts(ctx context.Context, id string, after, limit int) ([]Part, error) {
	return parts(ctx, c.r, id, after, limit)
}

func parts(ctx context.Context, q querier, id string, after, limit int) ([]Part, error) {
	rows, err := q.QueryContext(ctx, `SELECT num, size, etag, created FROM upload_parts
		WHERE upload_id = ? AND num > ? ORDER BY num LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []Part{}
	for rows.Next() {
		var p Part
		var created int64
		if err := rows.Scan(&p.Num, &p.Size, &p.ETag, &created); err != nil {
			return nil, classify(err)
		}
		p.Created = fromNanos(created)
		out = append(out, p)
	}
	return out, classify(rows.Err())
}

// PartChunks returns the chunk lists of parts nums of an upload, in order.
func (c *Catalog) PartChunks(ctx context.Context, id string, nums []int) ([]ChunkRef, error) {
	var out []ChunkRef
	for _, num := range nums {
		rs, err := partChunks(ctx, c.r, id, num)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// AddPart stores part num of an upload (replacing one there), with the
// size, chunks and ETag (nv.Meta.ETag) of nv, and takes a reference on
// each chunk. Revived is as AddVersion's: the caller makes sure those
// chunks exist before the transaction commits.
func (tx *Tx) AddPart(ctx context.Context, id string, num int, nv NewVersion) (Added, error) {
	if num < 1 || num > MaxParts {
		return Added{}, fault.E(fault.Invalid, "part number %d: want 1 to %d", num, MaxParts)
	}
	if err := nv.check(); err != nil {
		return Added{}, err
	}
	if _, err := upload(ctx, tx, id); err != nil {
		return Added{}, err
	}
	if err := tx.dropParts(ctx, id, "num = ?", num); err != nil {
		return Added{}, err
	}
	ids, revived, err := tx.reference(ctx, nv.Chunks, false)
	if err != nil {
		return Added{}, err
	}
	added := Added{Revived: revived}
	for i, cid := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO upload_chunks(upload_id, num, idx, chunk_id) VALUES (?, ?, ?, ?)`,
			id, num, i, cid); err != nil {
			return Added{}, fmt.Errorf("add part chunks: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO upload_parts(upload_id, num, size, etag, created) VALUES (?, ?, ?, ?, ?)`,
		id, num, nv.Size, nv.Meta.ETag, nanos(tx.now)); err != nil {
		return Added{}, fmt.Errorf("add part: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE uploads SET touched = ? WHERE id = ?`, nanos(tx.now), id); err != nil {
		return Added{}, err
	}
	added.Version = Version{Name: nv.Name.String(), Size: nv.Size, Meta: Meta{ETag: nv.Meta.ETag}, Created: tx.now}
	return added, nil
}

// dropParts deletes the parts of an upload that where selects (one
// condition on num, with its argument; "1" and nil for all) and the
// references they held; chunks left without any are stamped as garbage
// with the newest change.
func (tx *Tx) dropParts(ctx context.Context, id, where string, arg any) error {
	args := []any{nanos(tx.now), id}
	if arg != nil {
		args = append(args, arg)
	}
	_, err := tx.ExecContext(ctx, `UPDATE chunks SET
			refs = refs - uc.n,
			zero_at = CASE WHEN refs = uc.n THEN ?1 ELSE zero_at END,
			zero_seq = CASE WHEN refs = uc.n THEN (SELECT coalesce(max(seq), 0) FROM changes) ELSE zero_seq END
		FROM (SELECT chunk_id, count(*) AS n FROM upload_chunks WHERE upload_id = ?2 AND `+where+` GROUP BY chunk_id) AS uc
		WHERE chunks.id = uc.chunk_id`, args...)
	if err != nil {
		return fmt.Errorf("drop part references: %w", err)
	}
	for _, table := range []string{"upload_chunks", "upload_parts"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE upload_id = ?2 AND `+where, args...); err != nil {
			return fmt.Errorf("drop parts: %w", err)
		}
	}
	return nil
}

// AbortUpload drops an upload and the references of its parts.
func (tx *Tx) AbortUpload(ctx context.Context, id string) error {
	u, err := upload(ctx, tx, id)
	if err != nil {
		return err
	}
	if _, err := tx.logChange(ctx, "upload-abort", u.Name, 0, id, nil); err != nil {
		return err
	}
	return tx.dropUpload(ctx, id)
}

func (tx *Tx) dropUpload(ctx context.Context, id string) error {
	if err := tx.dropParts(ctx, id, "1", nil); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id)
	return err
}

// CompletePart names a part in a completion, with the ETag the client
// had for it.
type CompletePart struct {
	Num  int
	ETag string
}

// CompleteUpload makes the upload's listed parts, in order, the newest
// version of its name, with sum as the SHA-256 of their concatenation
// (the caller read them) and checksum as its Meta.Checksum (the caller
// checked it; "" for none), and drops the upload. The version's ETag is
// S3's multipart form: the MD5 of the parts' MD5s, a dash, the count.
func (tx *Tx) CompleteUpload(ctx context.Context, id string, list []CompletePart, sum Digest, checksum string) (Added, error) {
	u, err := upload(ctx, tx, id)
	if err != nil {
		return Added{}, err
	}
	name, err := names.Parse(u.Name)
	if err != nil {
		return Added{}, fmt.Errorf("%w: upload %s: %w", ErrCorrupt, id, err)
	}
	if len(list) == 0 || len(list) > MaxParts {
		return Added{}, fmt.Errorf("%w: %d parts", ErrBadPart, len(list))
	}
	have, err := parts(ctx, tx, id, 0, MaxParts)
	if err != nil {
		return Added{}, err
	}
	byNum := make(map[int]Part, len(have))
	for _, p := range have {
		byNum[p.Num] = p
	}
	md := md5.New()
	meta := u.Meta
	meta.Parts, meta.Checksum = nil, checksum
	var size int64
	var refs []ChunkRef
	for i := 1; i < len(list); i++ {
		if list[i].Num <= list[i-1].Num {
			return Added{}, fmt.Errorf("%w: part %d after part %d: parts must be in ascending order", ErrBadPart, list[i].Num, list[i-1].Num)
		}
	}
	for i, cp := range list {
		p, ok := byNum[cp.Num]
		switch {
		case !ok:
			return Added{}, fmt.Errorf("%w: part %d was not uploaded", ErrBadPart, cp.Num)
		case cp.ETag != p.ETag:
			return Added{}, fmt.Errorf("%w: part %d has ETag %s, not %s", ErrBadPart, cp.Num, p.ETag, cp.ETag)
		case i < len(list)-1 && p.Size < MinPart:
			return Added{}, fmt.Errorf("%w: part %d has %d bytes; every part but the last needs %d", ErrPartTooSmall, cp.Num, p.Size, MinPart)
		}
		b, err := hex.DecodeString(p.ETag)
		if err != nil {
			return Added{}, fmt.Errorf("%w: part %d ETag %q", ErrCorrupt, cp.Num, p.ETag)
		}
		md.Write(b)
		size += p.Size
		meta.AddPart(p.Size)
		rs, err := partChunks(ctx, tx, id, cp.Num)
		if err != nil {
			return Added{}, err
		}
		refs = append(refs, rs...)
	}
	meta.ETag = fmt.Sprintf("%x-%d", md.Sum(nil), len(list))
	a, err := tx.AddVersion(ctx, NewVersion{Name: name, Size: size, Mode: 0o644, MTime: tx.now, ContentType: u.ContentType,
		SHA256: sum, Chunks: refs, Meta: meta})
	if err != nil {
		return Added{}, err
	}
	if len(a.Revived) > 0 {
		return Added{}, fmt.Errorf("complete upload %s: %w: chunk %s had no reference", id, ErrCorrupt, a.Revived[0])
	}
	return a, tx.dropUpload(ctx, id)
}

func partChunks(ctx context.Context, q querier, id string, num int) ([]ChunkRef, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.hash, c.plain_size, c.stored_size FROM upload_chunks uc
		JOIN chunks c ON c.id = uc.chunk_id WHERE uc.upload_id = ? AND uc.num = ? ORDER BY uc.idx`, id, num)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ChunkRef
	for rows.Next() {
		var r ChunkRef
		var h []byte
		if err := rows.Scan(&h, &r.Plain, &r.Stored); err != nil {
			return nil, err
		}
		copy(r.ID[:], h)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ExpireUploads aborts the uploads no part reached since before, and
// returns how many.
func (c *Catalog) ExpireUploads(ctx context.Context, before time.Time) (int, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT id FROM uploads WHERE touched < ?`, nanos(before))
	if err != nil {
		return 0, classify(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, classify(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	n := 0
	for _, id := range ids {
		err := c.Tx(ctx, func(tx *Tx) error {
			u, err := upload(ctx, tx, id)
			if err != nil || !u.Touched.Before(before) {
				return err // gone, or a part came meanwhile
			}
			n++
			return tx.AbortUpload(ctx, id)
		})
		if err != nil && !errors.Is(err, ErrNoUpload) {
			return n, err
		}
	}
	return n, nil
}
