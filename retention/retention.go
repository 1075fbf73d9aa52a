// Package retention decides which of a series of points in time a policy
// keeps, with restic's meaning of its rules (keep-last, -hourly, -daily,
// -weekly, -monthly, -yearly, -within). loft applies it to snapshots and
// to each object's versions alike.
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Policy says what to keep. A zero Policy keeps nothing; callers refuse it
// (forgetting everything is rm --purge's job).
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	// Within keeps everything at most this long before the newest point.
	Within time.Duration
}

// IsZero reports whether the policy has no rule.
func (p Policy) IsZero() bool { return p == Policy{} }

// String lists the rules, for messages.
func (p Policy) String() string {
	var out []string
	for _, r := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if r.n > 0 {
			out = append(out, fmt.Sprintf("%s %d", r.name, r.n))
		}
	}
	if p.Within > 0 {
		out = append(out, "within "+p.Within.String())
	}
	return strings.Join(out, ", ")
}

// Keep returns, for each of times (in any order), whether the policy keeps
// it, and why (the rules that keep it). Points are considered newest
// first: keep-last keeps the n newest; keep-daily n keeps the newest point
// of each of the n newest days that have one, and so for the other
// periods (weeks are ISO weeks; periods are in loc); keep-within keeps
// every point at most Within older than the newest. A point kept by any
// rule is kept.
func (p Policy) Keep(times []time.Time, loc *time.Location) (keep []bool, why [][]string) {
	keep, why = make([]bool, len(times)), make([][]string, len(times))
	order := make([]int, len(times))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return times[order[a]].After(times[order[b]]) })
	type bucketRule struct {
		name   string
		left   int
		bucket func(time.Time) string
		last   string
	}
	rules := []*bucketRule{
		{name: "last", left: p.Last, bucket: func(t time.Time) string { return t.Format(time.RFC3339Nano) }},
		{name: "hourly", left: p.Hourly, bucket: func(t time.Time) string { return t.Format("2006-01-02 15") }},
		{name: "daily", left: p.Daily, bucket: func(t time.Time) string { return t.Format("2006-01-02") }},
		{name: "weekly", left: p.Weekly, bucket: func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-%02d", y, w) }},
		{name: "monthly", left: p.Monthly, bucket: func(t time.Time) string { return t.Format("2006-01") }},
		{name: "yearly", left: p.Yearly, bucket: func(t time.Time) string { return t.Format("2006") }},
	}
	for n, i := range order {
		t := times[i].In(loc)
		for _, r := range rules {
			if r.left == 0 {
				continue
			}
			b := r.bucket(t)
			if r.name == "last" {
				b = fmt.Sprint(n) // every point is its own: ties count
			}
			if b != r.last {
				r.last = b
				r.left--
				keep[i] = true
				why[i] = append(why[i], r.name)
			}
		}
		if p.Within > 0 && len(order) > 0 && !times[order[0]].After(times[i].Add(p.Within)) {
			keep[i] = true
			why[i] = append(why[i], "within")
		}
	}
	return keep, why
}
