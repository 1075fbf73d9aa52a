// Command bench measures loft end to end and prints every figure next to the
// limit it is bounded by, measured on the same machine in the same run. It
// runs the real binary as separate processes on generated data. `make bench`
// runs it; it is not a test and asserts nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

type bench struct {
	loft  string // the binary under test
	dir   string // scratch space
	quick bool
	size  int64 // the big file's size when not 0
	rows  []row
	// cpu is the user and system CPU time of the last runLoft, for the
	// figures whose bound is the machine's CPU.
	cpu time.Duration
}

// row is one printed figure.
type row struct {
	name, value, limit, target, verdict string
}

func main() {
	b := &bench{}
	flag.StringVar(&b.loft, "loft", "bin/loft", "loft binary to measure")
	flag.StringVar(&b.dir, "dir", ".bench", "scratch directory (several GiB)")
	flag.BoolVar(&b.quick, "quick", false, "smaller sizes, for trying the harness")
	only := flag.String("only", "", "comma-separated sections to run (limits,params,put,small,edit,get,rss,million,trees,s3,peers,idle,tui); the limits always run")
	size := flag.String("size", "", "size of the big file, the \"1 GiB\" of the figures (e.g. 128MiB); for trying a section")
	flag.Parse()
	if *size != "" {
		n, err := parseSize(*size)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -size:", err)
			os.Exit(2)
		}
		b.size = n
	}
	if err := b.run(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (b *bench) run(only string) error {
	ctx := context.Background()
	abs, err := filepath.Abs(b.loft)
	if err != nil {
		return err
	}
	b.loft = abs
	if err := cleanScratch(b.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	defer cleanScratch(b.dir) // keeps the tui section's cached repository
	fmt.Printf("loft bench: %s, %d CPUs, %s, scratch %s\n", time.Now().Format(time.DateTime), runtime.NumCPU(), runtime.Version(), b.dir)
	want := func(s string) bool { return only == "" || strings.Contains(","+only+",", ","+s+",") }

	sz := b.sizes()
	lim, err := b.limits(ctx, sz)
	if err != nil {
		return err
	}
	if want("params") {
		if err := b.params(ctx, sz); err != nil {
			return err
		}
	}
	e2e := &e2eState{}
	steps := []struct {
		name string
		fn   func(context.Context, sizes, *limits, *e2eState) error
	}{
		{"put", b.putNew}, {"small", b.putSmall}, {"edit", b.putEdited}, {"get", b.get},
		{"rss", b.rss}, {"million", b.million}, {"trees", b.trees}, {"s3", b.s3}, {"peers", b.peers}, {"idle", b.idle}, {"tui", b.tui},
	}
	for _, s := range steps {
		if !want(s.name) {
			continue
		}
		if err := s.fn(ctx, sz, lim, e2e); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.print()
	return nil
}

type sizes struct {
	big      int64 // the "1 GiB" file
	huge     int64 // the "4 GiB" file
	small    int   // number of small files
	million  int   // chunks in the big repository
	paramLen int64 // data per chunking candidate
}

func (b *bench) sizes() sizes {
	sz := sizes{big: 1 << 30, huge: 4 << 30, small: 20000, million: 1000000, paramLen: 256 << 20}
	if b.quick {
		sz = sizes{big: 128 << 20, huge: 256 << 20, small: 2000, million: 20000, paramLen: 64 << 20}
	}
	if b.size > 0 {
		sz.big = b.size
	}
	return sz
}

// parseSize reads a byte count such as 134217728, 128MiB or 1GiB.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is no size (such as 128MiB)", s)
	}
	return n * mult, nil
}

func (b *bench) add(r row) {
	b.rows = append(b.rows, r)
	fmt.Printf("  %-52s %s\n", r.name, r.value)
}

func (b *bench) print() {
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tLIMIT (same run)\tTARGET\tRESULT")
	for _, r := range b.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, r.value, r.limit, r.target, r.verdict)
	}
	tw.Flush()
}

// runLoft runs the binary and returns its wall time and peak RSS in bytes.
func (b *bench) runLoft(ctx context.Context, repo string, args ...string) (time.Duration, int64, []byte, error) {
	settle()
	cmd := exec.CommandContext(ctx, b.loft, append([]string{"--repo", repo, "--quiet"}, args...)...)
	cmd.Env = append(os.Environ(), "LOFT_LOG_LEVEL=warn")
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, nil, err
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	err := cmd.Wait()
	el := time.Since(start)
	rss := peak()
	b.cpu = cpuOf(cmd.ProcessState)
	if err != nil {
		return el, rss, []byte(out.String()), fmt.Errorf("loft %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return el, rss, []byte(out.String()), nil
}

// cpuOf is the user and system CPU time a finished process used.
func cpuOf(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// settle flushes dirty data, so that one measurement does not pay for the
// writeback of the one before it.
func settle() { unix.Sync() }

func mbps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func verdict(ok bool, detail string) string {
	if ok {
		return "ok (" + detail + ")"
	}
	return "MISSED (" + detail + ")"
}
