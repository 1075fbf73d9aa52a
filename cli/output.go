package cli

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
)

// writeJSON prints v as one line of JSON on stdout: a command's result.
func (e *runEnv) writeJSON(v any) error {
	e.wroteJSON = true
	return json.NewEncoder(e.Stdout).Encode(v)
}

// jsonError is what --json prints on stdout when a command fails before it
// printed its result, so that a script reads one JSON value either way.
type jsonError struct {
	Error struct {
		Code    string `json:"code"` // the kind's name: not_found, integrity, no_space, ...
		Exit    int    `json:"exit"`
		Message string `json:"message"`
	} `json:"error"`
}

// display returns s as it can be printed on a terminal: as it is, unless
// it holds control characters or is not valid UTF-8 (a file name may, and
// a peer may send anything), in which case it is quoted with escapes.
func display(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

// bytes formats a byte count in binary units, as du -h and ls -h do.
func bytes(n int64) string {
	if n < 0 {
		return "-" + humanize.IBytes(uint64(-n))
	}
	return humanize.IBytes(uint64(n))
}

// rate formats bytes per second in decimal megabytes, as disks are rated;
// below a MiB a rate says nothing and is left out.
func rate(n int64, d time.Duration) string {
	if d <= 0 || n < 1<<20 {
		return ""
	}
	return fmt.Sprintf("%.0f MB/s", float64(n)/d.Seconds()/1e6)
}

// withRate appends ", RATE" to s when there is a rate to show.
func withRate(s string, n int64, d time.Duration) string {
	if r := rate(n, d); r != "" {
		return s + ", " + r
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func modeString(m uint32) string { return fs.FileMode(m).Perm().String() }

func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
