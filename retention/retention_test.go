package retention

import (
	"strings"
	"testing"
	"time"
)

// series is a point every 7 hours from 2026-01-01 03:00 UTC, 205 of them
// (the newest on Sunday 2026-03-01 at 15:00, in ISO week 9, which began
// on Monday 02-23), in shuffled order.
func series() []time.Time {
	var out []time.Time
	t0 := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	for i := range 60 * 24 / 7 {
		out = append(out, t0.Add(time.Duration(i)*7*time.Hour))
	}
	for i := range out { // a fixed shuffle: Keep takes any order
		j := (i * 37) % len(out)
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func kept(p Policy, times []time.Time) []string {
	keep, _ := p.Keep(times, time.UTC)
	var out []time.Time
	for i, k := range keep {
		if k {
			out = append(out, times[i])
		}
	}
	// newest first, as restic prints
	for a := range out {
		for b := a + 1; b < len(out); b++ {
			if out[b].After(out[a]) {
				out[a], out[b] = out[b], out[a]
			}
		}
	}
	var s []string
	for _, t := range out {
		s = append(s, t.Format("01-02 15h"))
	}
	return s
}

func TestKeep(t *testing.T) {
	ts := series()
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{Last: 3}, "03-01 15h 03-01 08h 03-01 01h"},
		{Policy{Hourly: 2}, "03-01 15h 03-01 08h"},
		// the newest of each of the 3 newest days (points fall at 01h, 08h,
		// 15h on 03-01; 04h, 11h, 18h on 02-28; ... 21h on 02-27)
		{Policy{Daily: 3}, "03-01 15h 02-28 18h 02-27 21h"},
		// ISO weeks: the newest of week 9, then of week 8 (ending 02-22)
		{Policy{Weekly: 2}, "03-01 15h 02-22 22h"},
		{Policy{Monthly: 2}, "03-01 15h 02-28 18h"},
		{Policy{Yearly: 5}, "03-01 15h"},
		{Policy{Within: 20 * time.Hour}, "03-01 15h 03-01 08h 03-01 01h"},
		// rules add up; a point two rules keep counts for both
		{Policy{Last: 1, Daily: 2}, "03-01 15h 02-28 18h"},
		{Policy{Last: 2, Monthly: 2}, "03-01 15h 03-01 08h 02-28 18h"},
		{Policy{}, ""},
	} {
		got := strings.Join(kept(tc.p, ts), " ")
		if got != tc.want {
			t.Errorf("%v: kept %s, want %s", tc.p, got, tc.want)
		}
	}
}

func TestKeepSaysWhy(t *testing.T) {
	ts := series()
	keep, why := Policy{Last: 1, Daily: 1, Within: time.Hour}.Keep(ts, time.UTC)
	n := 0
	for i, k := range keep {
		if k {
			n++
			if got := strings.Join(why[i], ","); got != "last,daily,within" {
				t.Errorf("%s kept for %s", ts[i], got)
			}
		} else if len(why[i]) != 0 {
			t.Errorf("%s not kept, yet %v", ts[i], why[i])
		}
	}
	if n != 1 {
		t.Errorf("kept %d, want the newest alone", n)
	}
}

// Periods are in the location given: 23:30 UTC on the 1st is the 2nd in
// UTC+1.
func TestKeepInLocation(t *testing.T) {
	ts := []time.Time{time.Date(2026, 5, 1, 23, 30, 0, 0, time.UTC), time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	plus1 := time.FixedZone("plus1", 3600)
	if keep, _ := (Policy{Daily: 5}).Keep(ts, plus1); !keep[0] || !keep[1] {
		t.Errorf("in UTC+1 the two are different days: %v", keep)
	}
	if keep, _ := (Policy{Daily: 5}).Keep(ts, time.UTC); !keep[0] || keep[1] {
		t.Errorf("in UTC the two are one day: %v", keep)
	}
}
