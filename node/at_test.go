package node

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseAt(t *testing.T) {
	loc := time.FixedZone("here", 3600)
	for _, tc := range []struct {
		in   string
		id   string
		time time.Time
	}{
		{"3FA2c1d0", "3fa2c1d0", time.Time{}},
		{"2026-12-07", "", time.Date(2026, 12, 7, 23, 59, 59, 999999999, loc)},
		{"2026-12-07 14:30", "", time.Date(2026, 12, 7, 14, 30, 0, 0, loc)},
		{"2026-12-07T14:30:05", "", time.Date(2026, 12, 7, 14, 30, 5, 0, loc)},
		{"2026-12-07T14:30:05Z", "", time.Date(2026, 12, 7, 14, 30, 5, 0, time.UTC)},
	} {
		got, err := ParseAt(tc.in, loc)
		if err != nil || got.ID != tc.id || !got.Time.Equal(tc.time) {
			t.Errorf("ParseAt(%q) = %+v, %v; want ID %q time %v", tc.in, got, err, tc.id, tc.time)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "3fa2-c1", "12:00"} {
		if _, err := ParseAt(bad, loc); !errors.Is(err, ErrBadAt) {
			t.Errorf("ParseAt(%q): %v, want ErrBadAt", bad, err)
		}
	}
}

// FuzzParseAt: any input is an ID of hex digits, a time, or ErrBadAt;
// never a panic, never both.
func FuzzParseAt(f *testing.F) {
	for _, s := range []string{"3fa2c1d0", "2026-12-07", "2026-12-07 14:30", "2026-12-07T14:30:05.123Z", "", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, err := ParseAt(s, time.UTC)
		switch {
		case err != nil:
			if !errors.Is(err, ErrBadAt) || !at.IsZero() {
				t.Fatalf("ParseAt(%q): %+v, %v", s, at, err)
			}
		case at.ID != "":
			if !at.Time.IsZero() || strings.Trim(at.ID, "0123456789abcdef") != "" {
				t.Fatalf("ParseAt(%q): ID %q", s, at.ID)
			}
		case at.Time.IsZero():
			t.Fatalf("ParseAt(%q): neither ID nor time", s)
		}
	})
}
