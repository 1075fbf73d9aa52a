package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
)

// At is what --at names: a snapshot by ID, or the newest snapshot at or
// before a time.
type At struct {
	ID   string
	Time time.Time
}

// IsZero reports whether no point was given.
func (a At) IsZero() bool { return a.ID == "" && a.Time.IsZero() }

// ErrBadAt means an --at that is neither a snapshot ID nor a time.
var ErrBadAt = fault.New(fault.Invalid, "--at takes a snapshot ID or a time")

// atLayouts are the times --at takes, in the local time zone unless they
// say otherwise.
var atLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04",
	"2006-01-02 15:04", "2006-01-02"}

// ParseAt reads an --at: hex digits are a snapshot ID (or its beginning),
// anything else a time (RFC 3339, or "2006-01-02 15:04[:05]", or a date,
// meaning its end: the day as it was when it ended).
func ParseAt(s string, loc *time.Location) (At, error) {
	s = strings.TrimSpace(s)
	if s != "" && strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" && !strings.Contains(s, "-") {
		return At{ID: strings.ToLower(s)}, nil
	}
	for _, l := range atLayouts {
		t, err := time.ParseInLocation(l, s, loc)
		if err != nil {
			continue
		}
		if l == "2006-01-02" {
			t = t.AddDate(0, 0, 1).Add(-time.Nanosecond)
		}
		if t.IsZero() {
			break // the zero time means "no time" here
		}
		return At{Time: t}, nil
	}
	return At{}, fmt.Errorf("%q: %w (such as 3fa2c1d0, 2026-12-07 or 2026-12-07 14:30)", s, ErrBadAt)
}

// FindSnapshot resolves at for the tree under prefix (see
// catalog.FindSnapshot).
func (n *Node) FindSnapshot(ctx context.Context, prefix names.Prefix, at At) (catalog.Snapshot, error) {
	return n.cat.FindSnapshot(ctx, prefix, at.ID, at.Time)
}

// Snapshots lists the snapshots of prefix and below, oldest first.
func (n *Node) Snapshots(ctx context.Context, prefix names.Prefix) ([]catalog.Snapshot, error) {
	return n.cat.Snapshots(ctx, prefix)
}
