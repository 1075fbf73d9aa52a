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
)

// Access is what an access key may do in a bucket.
type Access string

// The accesses, each including the ones before it.
const (
	AccessRead  Access = "read"  // list and get
	AccessWrite Access = "write" // and put, copy, delete
	AccessAdmin Access = "admin" // and create and delete the bucket, set its policy and versioning
)

// Allows reports whether a grant of a covers need.
func (a Access) Allows(need Access) bool { return a.rank() >= need.rank() && need.rank() > 0 }

func (a Access) rank() int {
	switch a {
	case AccessRead:
		return 1
	case AccessWrite:
		return 2
	case AccessAdmin:
		return 3
	}
	return 0
}

// Grant gives an access key an access to one bucket, or to every bucket
// when Bucket is "*".
type Grant struct {
	Bucket string `json:"bucket"`
	Access Access `json:"access"`
}

// AccessKey is an S3 access key of this node.
type AccessKey struct {
	ID      string    `json:"id"`
	Secret  string    `json:"secret,omitempty"`
	Name    string    `json:"name,omitempty"`
	Grants  []Grant   `json:"grants"`
	Created time.Time `json:"created"`
}

// Allows reports whether k may do need in bucket.
func (k AccessKey) Allows(bucket string, need Access) bool {
	for _, g := range k.Grants {
		if (g.Bucket == "*" || g.Bucket == bucket) && g.Access.Allows(need) {
			return true
		}
	}
	return false
}

// AddKey stores a new access key; an ID already there is fault.Conflict.
func (c *Catalog) AddKey(ctx context.Context, k AccessKey) error {
	for _, g := range k.Grants {
		if g.Access.rank() == 0 || g.Bucket == "" {
			return fault.E(fault.Invalid, "grant %s:%s: want BUCKET:read|write|admin", g.Bucket, g.Access)
		}
	}
	grants, err := json.Marshal(nonNilGrants(k.Grants))
	if err != nil {
		return err
	}
	return c.Tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO access_keys(id, secret, name, grants, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`, k.ID, k.Secret, k.Name, string(grants), nanos(k.Created))
		if err != nil {
			return fmt.Errorf("add access key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.E(fault.Conflict, "access key %s exists", k.ID)
		}
		_, err = tx.logChange(ctx, "key-add", "", 0, k.ID, nil)
		return err
	})
}

func nonNilGrants(g []Grant) []Grant {
	if g == nil {
		return []Grant{}
	}
	return g
}

// Key returns the access key id, secret included; an unknown one is
// ErrNotFound.
func (c *Catalog) Key(ctx context.Context, id string) (AccessKey, error) {
	k, err := scanKey(c.r.QueryRowContext(ctx, `SELECT id, secret, name, grants, created FROM access_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("access key %s: %w", id, ErrNotFound)
	}
	return k, err
}

// Keys returns every access key, oldest first, without secrets.
func (c *Catalog) Keys(ctx context.Context) ([]AccessKey, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT id, '', name, grants, created FROM access_keys ORDER BY created, id`)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []AccessKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, classify(rows.Err())
}

func scanKey(s scanner) (AccessKey, error) {
	var k AccessKey
	var grants string
	var created int64
	if err := s.Scan(&k.ID, &k.Secret, &k.Name, &grants, &created); err != nil {
		return k, err
	}
	k.Created = fromNanos(created)
	if err := json.Unmarshal([]byte(grants), &k.Grants); err != nil {
		return k, fmt.Errorf("%w: access key %s: grants: %w", ErrCorrupt, k.ID, err)
	}
	return k, nil
}

// RemoveKey deletes an access key; an unknown one is ErrNotFound.
func (c *Catalog) RemoveKey(ctx context.Context, id string) error {
	return c.Tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM access_keys WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("remove access key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("access key %s: %w", id, ErrNotFound)
		}
		_, err = tx.logChange(ctx, "key-rm", "", 0, id, nil)
		return err
	})
}

// Policy says who may read a bucket without a grant of their own.
type Policy string

// The policies.
const (
	PolicyPrivate           Policy = "private"            // only keys granted the bucket
	PolicyPublicRead        Policy = "public-read"        // anyone, anonymous requests too
	PolicyAuthenticatedRead Policy = "authenticated-read" // any valid key of this node
)

// Valid reports whether p is one of the policies.
func (p Policy) Valid() bool {
	return p == PolicyPrivate || p == PolicyPublicRead || p == PolicyAuthenticatedRead
}

// BucketSettings are a bucket's settings on this node.
type BucketSettings struct {
	Name   string `json:"name"`
	Policy Policy `json:"policy"`
	// Versioning is S3's state: "" (never set), "Enabled" or "Suspended".
	// History is kept either way; Suspended only hides it, as S3 does.
	Versioning string `json:"versioning,omitempty"`
}

// Bucket returns a bucket's settings, the defaults when none were made.
func (c *Catalog) Bucket(ctx context.Context, name string) (BucketSettings, error) {
	b := BucketSettings{Name: name, Policy: PolicyPrivate}
	err := c.r.QueryRowContext(ctx, `SELECT policy, versioning FROM buckets WHERE name = ?`, name).Scan(&b.Policy, &b.Versioning)
	if errors.Is(err, sql.ErrNoRows) {
		return b, nil
	}
	return b, classify(err)
}

// SetBucket stores a bucket's settings.
func (c *Catalog) SetBucket(ctx context.Context, b BucketSettings) error {
	if !b.Policy.Valid() {
		return fault.E(fault.Invalid, "bucket policy %q: want private, public-read or authenticated-read", b.Policy)
	}
	if b.Versioning != "" && b.Versioning != "Enabled" && b.Versioning != "Suspended" {
		return fault.E(fault.Invalid, "bucket versioning %q: want Enabled or Suspended", b.Versioning)
	}
	return c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO buckets(name, policy, versioning) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET policy = excluded.policy, versioning = excluded.versioning`,
			b.Name, b.Policy, b.Versioning)
		return err
	})
}

// DropBucket forgets a bucket's settings.
func (c *Catalog) DropBucket(ctx context.Context, name string) error {
	return c.Tx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM buckets WHERE name = ?`, name)
		return err
	})
}

// Range calls fn, in name order, with the head version of each object
// whose name lies in [lo, hi) (hi "" for no bound); deleted objects only
// with deleted set. Unlike List it knows nothing of directories: S3's
// prefixes are prefixes of strings.
func (c *Catalog) Range(ctx context.Context, lo, hi string, deleted bool, fn func(Version) error) error {
	const page = 256
	for first := true; ; first = false {
		// After the first page, lo is the last name seen: strictly above it.
		rows, err := c.r.QueryContext(ctx, `SELECT `+versionCols+`
			FROM objects o JOIN versions v ON v.object_id = o.id AND v.num = o.head
			WHERE (o.name > ?1 OR (?2 AND o.name = ?1)) AND (?3 = '' OR o.name < ?3) AND (?4 OR o.live = 1)
			ORDER BY o.name LIMIT ?5`, lo, first, hi, deleted, page)
		if err != nil {
			return classify(err)
		}
		var batch []Version
		for rows.Next() {
			v, err := scanVersion(rows)
			if err != nil {
				rows.Close()
				return classify(err)
			}
			batch = append(batch, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify(err)
		}
		for _, v := range batch {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
		lo = batch[len(batch)-1].Name
	}
}

// PrefixEnd returns the least string above every string that starts with
// p ("" when there is none), the upper bound of Range for a prefix.
func PrefixEnd(p string) string { return prefixEnd(p) }

// CopyVersion adds a version of to with the content of version num of
// from (0: its newest), sharing its chunks: nothing is read or written but
// references. ctype and meta replace the source's when replace is set. A
// deletion or an entry is not content to copy: ErrDeleted, fault.Invalid.
func (tx *Tx) CopyVersion(ctx context.Context, from names.Name, num int64, to names.Name, replace bool, ctype string, meta Meta) (Added, error) {
	if num == 0 {
		err := tx.QueryRowContext(ctx, `SELECT head FROM objects WHERE name = ?`, from.String()).Scan(&num)
		if errors.Is(err, sql.ErrNoRows) {
			return Added{}, fmt.Errorf("%s: %w", from, ErrNotFound)
		}
		if err != nil {
			return Added{}, err
		}
	}
	src, err := tx.version(ctx, from.String(), num)
	if err != nil {
		return Added{}, err
	}
	switch {
	case src.Deleted:
		return Added{}, fmt.Errorf("%s version %d: %w", from, num, ErrDeleted)
	case src.Kind != KindFile:
		return Added{}, fault.E(fault.Invalid, "%s is a %s, not a file to copy", from, src.Kind)
	}
	rows, err := tx.QueryContext(ctx, `SELECT c.hash, c.plain_size, c.stored_size FROM version_chunks vc
		JOIN chunks c ON c.id = vc.chunk_id WHERE vc.version_id = ? ORDER BY vc.idx`, src.id)
	if err != nil {
		return Added{}, err
	}
	var refs []ChunkRef
	for rows.Next() {
		var r ChunkRef
		var hash []byte
		if err := rows.Scan(&hash, &r.Plain, &r.Stored); err != nil {
			rows.Close()
			return Added{}, err
		}
		copy(r.ID[:], hash)
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Added{}, err
	}
	nv := NewVersion{Name: to, Size: src.Size, Mode: src.Mode, MTime: tx.now, ContentType: src.ContentType,
		SHA256: src.SHA256, Chunks: refs, Meta: src.Meta, Shared: true}
	if replace {
		nv.ContentType, nv.Meta = ctype, meta
	}
	a, err := tx.AddVersion(ctx, nv)
	if err == nil && len(a.Revived) > 0 {
		// The source version holds a reference on every chunk it shares.
		return Added{}, fmt.Errorf("copy %s: %w: chunk %s had no reference", from, ErrCorrupt, a.Revived[0])
	}
	return a, err
}
