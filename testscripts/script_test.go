// Package testscripts runs loft's command line end to end: every script in
// testdata/*.txtar runs the real command in a fresh process, against a
// repository in the script's own work directory.
//
// Besides testscript's own commands, scripts have these (all written in Go,
// nothing external):
//
//	loftexit N ARGS...       run loft ARGS, assert exit code N; for N != 0 also assert
//	                         that every stderr line starts with "loft: " or "Try: "
//	interrupt INT|TERM ARGS... run loft ARGS with an endless pseudo-random standard input;
//	                         once it is busy (read 1 MiB or wrote output) send the signal
//	                         and assert that it stops within 15s with exit code 130
//	randfile NAME SIZE [SEED] write SIZE (suffix K or M: KiB, MiB) deterministic bytes
//	corrupt-chunk REPO [ID]  flip the first payload byte (offset 12) of the chunk file whose
//	                         name starts with ID (default: the first in name order) and set
//	                         $CHUNK to its ID; running it again undoes it
//	jsonfield FILE PATH WANT assert a field of the one JSON value in FILE (stdout, stderr or a
//	                         file): PATH is "." or .key.0.key; a segment "len" takes a length;
//	                         strings compare unquoted, anything else as compact JSON
//	set-format REPO N        set the format in REPO's catalog meta table
//	filestat FILE            print "KIND mode 0640 size N mtime RFC3339" to stdout, KIND
//	                         one of file, dir, symlink, fifo, device, other (not following links)
//	setmtime FILE TIME       set FILE's modification time (RFC 3339)
//	lsdir DIR                print DIR's entries, dot files too, sorted, "/" after directories
//	mkfifo NAME              make a named pipe (unix)
//
// Conditions: [root] is true when the tests run as root, which reads files
// whatever their permissions.
package testscripts

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite"

	"github.com/loftstore/loft/cli"
	"github.com/loftstore/loft/fault"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"loft": loftMain})
}

// loftMain is main.go's main: the same memory limit, the same signal
// context (an interrupted run exits 130) and the same terminal detection.
func loftMain() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := cli.Run(ctx, os.Args, cli.OSEnv())
	stop()
	os.Exit(code)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, params("testdata"))
}

func params(dir string) testscript.Params {
	return testscript.Params{
		Dir:                dir,
		RequireUniqueNames: true,
		Setup: func(env *testscript.Env) error {
			// The default repository lives in the script's work directory.
			home := filepath.Join(env.WorkDir, "home")
			if err := os.MkdirAll(home, 0o755); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("XDG_DATA_HOME", filepath.Join(env.WorkDir, "xdg"))
			// LOFT_REPO and LOFT_LOG_LEVEL are not inherited: testscript
			// starts from an empty environment.
			//
			// Under the race detector every loft process would sleep a
			// second at exit (GORACE atexit_sleep_ms=1000); scripts run
			// hundreds of them.
			if gorace := os.Getenv("GORACE"); !strings.Contains(gorace, "atexit_sleep_ms") {
				env.Setenv("GORACE", strings.TrimSpace(gorace+" atexit_sleep_ms=0"))
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"loftexit":      cmdLoftExit,
			"interrupt":     cmdInterrupt,
			"randfile":      cmdRandFile,
			"corrupt-chunk": cmdCorruptChunk,
			"jsonfield":     cmdJSONField,
			"set-format":    cmdSetFormat,
			"filestat":      cmdFileStat,
			"setmtime":      cmdSetMtime,
			"lsdir":         cmdLsDir,
			"mkfifo":        cmdMkfifo,
		},
	}
}

func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("%s does not support negation: give the exit code instead", name)
	}
}

// errorLines matches stderr made only of loft's own lines.
var errorLines = regexp.MustCompile(`\A((loft|Try): [^\n]*\n)+\z`)

// cmdLoftExit runs loft and asserts its exit code; stdout and stderr are
// left for the commands that follow.
func cmdLoftExit(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "loftexit")
	if len(args) < 1 {
		ts.Fatalf("usage: loftexit N [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("loftexit: bad exit code %q", args[0])
	}
	err = ts.Exec("loft", args[1:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("loftexit: %v", err)
	}
	if got != want {
		ts.Fatalf("loft exited with %d, want %d", got, want)
	}
	if want != 0 {
		if se := ts.ReadFile("stderr"); !errorLines.MatchString(se) {
			ts.Fatalf("stderr is not made of one-line \"loft: \" errors (and \"Try: \" hints):\n%s", se)
		}
	}
}

// endless is an unending deterministic byte stream that counts what was read.
type endless struct {
	rng *rand.ChaCha8
	n   atomic.Int64
}

func (e *endless) Read(p []byte) (int, error) {
	e.rng.Read(p)
	e.n.Add(int64(len(p)))
	return len(p), nil
}

// scriptEnv is the part of the script's environment loft looks at.
func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "WORK", "HOME", "XDG_DATA_HOME", "LOFT_REPO", "LOFT_LOG_LEVEL",
		"TMPDIR", "GORACE", "GOCOVERDIR", "GOMEMLIMIT", "GOTRACEBACK"} {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func cmdInterrupt(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "interrupt")
	if len(args) < 2 {
		ts.Fatalf("usage: interrupt INT|TERM ARGS...")
	}
	var sig os.Signal
	switch args[0] {
	case "INT":
		sig = os.Interrupt
	case "TERM":
		sig = syscall.SIGTERM
	default:
		ts.Fatalf("interrupt: signal %q is not INT or TERM", args[0])
	}
	path, err := exec.LookPath("loft")
	ts.Check(err)
	cmd := exec.Command(path, args[1:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = scriptEnv(ts)
	in := &endless{rng: rand.NewChaCha8([32]byte{1})}
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	ts.Check(err)
	ts.Check(cmd.Start())

	// Output arrives: loft is busy. Nothing more is read until the signal
	// has been sent, so a writer stays blocked where it was.
	wrote := make(chan struct{})
	signalled := make(chan struct{})
	var drained sync.WaitGroup
	drained.Add(1)
	go func() {
		defer drained.Done()
		var one [1]byte
		if n, _ := out.Read(one[:]); n > 0 {
			close(wrote)
			<-signalled
		}
		io.Copy(io.Discard, out)
	}()
	exited := make(chan error, 1)
	go func() {
		drained.Wait()
		exited <- cmd.Wait()
	}()

	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
busy:
	for {
		select {
		case <-wrote:
			break busy
		case <-tick.C:
			if in.n.Load() >= 1<<20 {
				break busy
			}
		case err := <-exited:
			ts.Fatalf("loft exited (%v) before it could be interrupted\n%s", err, stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			ts.Fatalf("loft neither read its input nor wrote output within 15s")
		}
	}
	ts.Check(cmd.Process.Signal(sig))
	close(signalled)
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		ts.Fatalf("loft did not stop within 15s of SIG%s\n%s", args[0], stderr.String())
	}
	fmt.Fprint(ts.Stderr(), stderr.String())
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	} else if werr != nil {
		ts.Fatalf("interrupt: %v", werr)
	}
	if code != fault.Interrupted.Exit() {
		ts.Fatalf("loft exited with %d after SIG%s, want %d\n%s", code, args[0], fault.Interrupted.Exit(), stderr.String())
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func cmdRandFile(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "randfile")
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: randfile NAME SIZE [SEED]")
	}
	size, err := parseSize(args[1])
	ts.Check(err)
	var seed [32]byte
	if len(args) == 3 {
		copy(seed[:], args[2])
	}
	name := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(name), 0o755))
	f, err := os.Create(name)
	ts.Check(err)
	w := bufio.NewWriter(f)
	_, err = io.CopyN(w, &endless{rng: rand.NewChaCha8(seed)}, size)
	ts.Check(err)
	ts.Check(w.Flush())
	ts.Check(f.Close())
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// chunkFiles lists repo's chunk files, in name order.
// chunkFiles lists the chunks of repo by where they are: a file's path, or
// for a row of the small-chunk database "DB#ID" (see readChunk).
func chunkFiles(repo string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(repo, "chunks", "[0-9a-f][0-9a-f]", "[0-9a-f][0-9a-f]", "*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		if hex64.MatchString(filepath.Base(f)) {
			out = append(out, f)
		}
	}
	small := filepath.Join(repo, "chunks", "small.db")
	if _, err := os.Stat(small); err == nil {
		db, err := sql.Open("sqlite", "file:"+small)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		rows, err := db.Query(`SELECT hex(hash) FROM chunks`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				return nil, err
			}
			out = append(out, small+"#"+strings.ToLower(h))
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return chunkOf(out[i]) < chunkOf(out[j]) })
	return out, nil
}

// chunkOf is the chunk ID (hex) of a place chunkFiles lists.
func chunkOf(place string) string {
	if _, id, ok := strings.Cut(place, "#"); ok {
		return id
	}
	return filepath.Base(place)
}

// readChunk and writeChunk read and replace a chunk's stored bytes where
// chunkFiles found it, as another program would.
func readChunk(place string) ([]byte, error) {
	db, id, ok := strings.Cut(place, "#")
	if !ok {
		return os.ReadFile(place)
	}
	h, err := hex.DecodeString(id)
	if err != nil {
		return nil, err
	}
	d, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var b []byte
	err = d.QueryRow(`SELECT data FROM chunks WHERE hash = ?`, h).Scan(&b)
	return b, err
}

func writeChunk(place string, b []byte) error {
	db, id, ok := strings.Cut(place, "#")
	if !ok {
		os.Chmod(place, 0o644) // chunk files are read-only for some writers
		return os.WriteFile(place, b, 0o644)
	}
	h, err := hex.DecodeString(id)
	if err != nil {
		return err
	}
	d, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.Exec(`UPDATE chunks SET data = ? WHERE hash = ?`, b, h)
	return err
}

func cmdCorruptChunk(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "corrupt-chunk")
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: corrupt-chunk REPO [ID]")
	}
	files, err := chunkFiles(ts.MkAbs(args[0]))
	ts.Check(err)
	var target string
	for _, f := range files {
		if len(args) == 1 || strings.HasPrefix(chunkOf(f), args[1]) {
			target = f
			break
		}
	}
	if target == "" {
		ts.Fatalf("corrupt-chunk: no chunk in %s matches %q", args[0], args[1:])
	}
	data, err := readChunk(target)
	ts.Check(err)
	const header = 12
	if len(data) <= header {
		ts.Fatalf("corrupt-chunk: %s has no payload", target)
	}
	data[header] ^= 0x01
	ts.Check(writeChunk(target, data))
	ts.Setenv("CHUNK", chunkOf(target))
}

func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonfield FILE PATH WANT")
	}
	text := ts.ReadFile(args[0])
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("jsonfield: %s is not JSON: %v\n%s", args[0], err, text)
	}
	if _, err := dec.Token(); err != io.EOF {
		ts.Fatalf("jsonfield: %s holds more than one JSON value", args[0])
	}
	if strings.Count(strings.TrimRight(text, "\n"), "\n") > 0 {
		ts.Fatalf("jsonfield: %s is not one line of JSON", args[0])
	}
	val, err := jsonPath(v, args[1])
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("jsonfield: %v", err)
	}
	got, same := jsonSame(val, args[2])
	switch {
	case same && neg:
		ts.Fatalf("jsonfield: %s is %s", args[1], got)
	case !same && !neg:
		ts.Fatalf("jsonfield: %s is %s, want %s", args[1], got, args[2])
	}
}

// jsonSame formats v (a string as it is, anything else as compact JSON with
// sorted keys) and reports whether it equals want, compared as JSON when
// want is JSON.
func jsonSame(v any, want string) (string, bool) {
	if s, ok := v.(string); ok {
		return s, s == want
	}
	b, _ := json.Marshal(v)
	got := string(b)
	dec := json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	var w any
	if err := dec.Decode(&w); err == nil {
		if wb, err := json.Marshal(w); err == nil && string(wb) == got {
			return got, true
		}
	}
	return got, got == want
}

// jsonPath follows path (".", ".a.0.b", ".a.len") into v.
func jsonPath(v any, path string) (any, error) {
	if !strings.HasPrefix(path, ".") {
		return nil, fmt.Errorf("path %q does not start with a dot", path)
	}
	if path != "." {
		for seg := range strings.SplitSeq(path[1:], ".") {
			switch x := v.(type) {
			case map[string]any:
				if seg == "len" {
					v = json.Number(strconv.Itoa(len(x)))
					continue
				}
				val, ok := x[seg]
				if !ok {
					return nil, fmt.Errorf("no field %q in %s", seg, path)
				}
				v = val
			case []any:
				if seg == "len" {
					v = json.Number(strconv.Itoa(len(x)))
					continue
				}
				i, err := strconv.Atoi(seg)
				if err != nil || i < 0 || i >= len(x) {
					return nil, fmt.Errorf("no element %q in %s (length %d)", seg, path, len(x))
				}
				v = x[i]
			default:
				return nil, fmt.Errorf("%s: cannot take %q of %v", path, seg, x)
			}
		}
	}
	return v, nil
}

func cmdSetFormat(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "set-format")
	if len(args) != 2 {
		ts.Fatalf("usage: set-format REPO N")
	}
	db, err := sql.Open("sqlite", "file:"+ts.MkAbs(filepath.Join(args[0], "catalog.db")))
	ts.Check(err)
	defer db.Close()
	res, err := db.Exec(`UPDATE meta SET value = ? WHERE key = 'format'`, args[1])
	ts.Check(err)
	if n, _ := res.RowsAffected(); n != 1 {
		ts.Fatalf("set-format: the meta table has no format row")
	}
}

func cmdFileStat(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "filestat")
	if len(args) != 1 {
		ts.Fatalf("usage: filestat FILE")
	}
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	kind := "file"
	switch m := fi.Mode(); {
	case m.IsDir():
		kind = "dir"
	case m&os.ModeSymlink != 0:
		kind = "symlink"
	case m&os.ModeNamedPipe != 0:
		kind = "fifo"
	case m&os.ModeDevice != 0:
		kind = "device"
	case !m.IsRegular():
		kind = "other"
	}
	fmt.Fprintf(ts.Stdout(), "%s mode %04o size %d mtime %s\n", kind, fi.Mode().Perm(), fi.Size(),
		fi.ModTime().UTC().Format(time.RFC3339Nano))
}

func cmdSetMtime(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "setmtime")
	if len(args) != 2 {
		ts.Fatalf("usage: setmtime FILE TIME")
	}
	t, err := time.Parse(time.RFC3339Nano, args[1])
	ts.Check(err)
	ts.Check(os.Chtimes(ts.MkAbs(args[0]), t, t))
}

func cmdLsDir(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "lsdir")
	if len(args) != 1 {
		ts.Fatalf("usage: lsdir DIR")
	}
	w := ts.Stdout() // empty output for an empty directory
	ents, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	for _, e := range ents { // sorted by name
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		fmt.Fprintln(w, name)
	}
}
