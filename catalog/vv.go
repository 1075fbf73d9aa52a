package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
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

// objectVV returns the merged version vector of object obj.
func (tx *Tx) objectVV(ctx context.Context, obj int64) (VV, error) {
	var s string
	if err := tx.QueryRowContext(ctx, `SELECT vv FROM objects WHERE id = ?`, obj).Scan(&s); err != nil {
		return nil, fmt.Errorf("object clock: %w", err)
	}
	return ParseVV(s)
}

func (tx *Tx) setObjectVV(ctx context.Context, obj int64, v VV) error {
	_, err := tx.ExecContext(ctx, `UPDATE objects SET vv = ? WHERE id = ?`, v.String(), obj)
	return err
}

// localWrite advances obj's clock for a write by this node and returns the
// new version's vector, already stored as the object's.
func (tx *Tx) localWrite(ctx context.Context, obj int64) (string, error) {
	v, err := tx.objectVV(ctx, obj)
	if err != nil {
		return "", err
	}
	v[tx.c.origin]++
	if err := tx.setObjectVV(ctx, obj, v); err != nil {
		return "", fmt.Errorf("object clock: %w", err)
	}
	return v.String(), nil
}
