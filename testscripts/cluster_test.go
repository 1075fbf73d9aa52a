package testscripts

// Cluster tests: real `loft serve` processes on 127.0.0.1 that pair,
// replicate, heal and exchange change logs.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// server is a running `loft serve`.
type server struct {
	repo, addr, id string
	cmd            *exec.Cmd
}

// newRepo creates a repository tuned for tests: fast heartbeats and
// replication passes, a short peer grace.
func newRepo(t *testing.T, dir string) string {
	t.Helper()
	must(t, dir, "init")
	for k, v := range map[string]string{"heartbeat-interval": "200ms", "replicate-interval": "300ms", "peer-grace": "3s", "gc-grace": "0s"} {
		must(t, dir, "config", "set", k, v)
	}
	return dir
}

// serve starts `loft serve` on repo and waits for its address.
func serve(t *testing.T, repo string) *server { t.Helper(); return serveAt(t, repo, "127.0.0.1:0") }

// serveAt starts `loft serve` on a given address (a restart keeps the
// address its peers know).
func serveAt(t *testing.T, repo, addr string) *server {
	t.Helper()
	s, lines := startServe(t, repo, "--listen", addr)
	select {
	case l := <-lines:
		// "serving ID on ADDR"
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("serve printed %q", l)
		}
		s.id, s.addr = f[1], f[3]
	case <-time.After(60 * time.Second):
		t.Fatalf("serve on %s did not start", repo)
	}
	return s
}

// startServe starts `loft serve` with args on repo, its log in repo.log,
// and returns the lines it prints (closed when it stops printing).
func startServe(t *testing.T, repo string, args ...string) (*server, <-chan string) {
	t.Helper()
	cmd := exec.Command("loft", append([]string{"--repo", repo, "serve"}, args...)...)
	cmd.Env = childEnv()
	logf, err := os.OpenFile(repo+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{repo: repo, cmd: cmd}
	t.Cleanup(func() { s.stop() })
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads past the first lines
			}
		}
	}()
	return s, lines
}

func (s *server) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	}
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// pair makes b join a through an invite.
func pair(t *testing.T, a, b *server) {
	t.Helper()
	tok := strings.TrimSpace(must(t, a.repo, "invite", "--addr", a.addr))
	must(t, b.repo, "join", tok, "--addr", b.addr)
}

type statusJSON struct {
	Node struct {
		Chunks int64 `json:"chunks"`
	} `json:"node"`
	Peers []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"peers"`
	Replication struct {
		Replicas int   `json:"replicas"`
		Chunks   int64 `json:"chunks"`
		Below    int64 `json:"below"`
	} `json:"replication"`
}

func status(t *testing.T, repo string) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(must(t, repo, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFor polls cond every 200ms for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

func sameFile(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s differs from %s", got, want)
	}
}

// TestClusterReplicateAndHeal: three nodes, R=2. A 200 MiB file put on one
// gets two confirmed copies of every chunk; one node stops for good; both
// survivors read the file back; after the peer grace every chunk has two
// copies again.
func TestClusterReplicateAndHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 200 MiB between processes")
	}
	dir := t.TempDir()
	var s [3]*server
	for i := range s {
		s[i] = serve(t, newRepo(t, filepath.Join(dir, fmt.Sprint("n", i))))
	}
	pair(t, s[0], s[1])
	pair(t, s[0], s[2])
	pair(t, s[1], s[2])

	src := filepath.Join(dir, "big")
	randFile(t, src, 200<<20, 3)
	must(t, s[0].repo, "put", src)
	for _, x := range s {
		waitFor(t, 3*time.Minute, "two copies of every chunk", func() (bool, string) {
			st := status(t, x.repo)
			return st.Replication.Chunks > 0 && st.Replication.Below == 0 && st.Replication.Replicas == 2, fmt.Sprintf("%+v", st.Replication)
		})
	}
	total := status(t, s[0].repo).Replication.Chunks

	s[1].kill()
	for i, x := range []*server{s[0], s[2]} {
		out := filepath.Join(dir, fmt.Sprint("back", i))
		must(t, x.repo, "get", "big", out)
		sameFile(t, src, out)
	}
	// After the grace, the dead node's copies no longer count: the
	// survivors copy what it held to each other, so both hold everything.
	waitFor(t, 3*time.Minute, "every chunk on both survivors", func() (bool, string) {
		a, c := status(t, s[0].repo), status(t, s[2].repo)
		ok := a.Replication.Below == 0 && c.Replication.Below == 0 && a.Node.Chunks >= total && c.Node.Chunks >= total
		return ok, fmt.Sprintf("n0 holds %d, n2 holds %d of %d; below %d, %d", a.Node.Chunks, c.Node.Chunks, total, a.Replication.Below, c.Replication.Below)
	})
	for _, x := range []*server{s[0], s[2]} {
		checkPasses(t, x.repo)
	}
}

// TestClusterCorruptChunk: a chunk corrupted on one node is detected on
// read and replaced from the replica; the reader gets correct bytes.
func TestClusterCorruptChunk(t *testing.T) {
	dir := t.TempDir()
	a := serve(t, newRepo(t, filepath.Join(dir, "a")))
	b := serve(t, newRepo(t, filepath.Join(dir, "b")))
	pair(t, a, b)
	src := filepath.Join(dir, "f")
	randFile(t, src, 8<<20, 4)
	must(t, a.repo, "put", src)
	waitFor(t, time.Minute, "replication", func() (bool, string) {
		st := status(t, a.repo)
		return st.Replication.Chunks > 0 && st.Replication.Below == 0, fmt.Sprintf("%+v", st.Replication)
	})
	files, err := chunkFiles(a.repo)
	if err != nil || len(files) == 0 {
		t.Fatalf("chunk files: %v, %v", files, err)
	}
	flipByte(t, files[0])
	out := filepath.Join(dir, "back")
	must(t, a.repo, "get", "f", out)
	sameFile(t, src, out)
	// The bad copy was replaced: a full read of a's store finds nothing.
	if _, errs, code := run(t, a.repo, "check", "--read-data"); code != 0 {
		t.Fatalf("check --read-data after the repair: exit %d: %s", code, errs)
	}
}

// flipByte damages a chunk where chunkFiles found it.
func flipByte(t *testing.T, place string) {
	t.Helper()
	b, err := readChunk(place)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := writeChunk(place, b); err != nil {
		t.Fatal(err)
	}
}

// TestClusterConflict: the same name written on two nodes that cannot
// reach each other; once they reconnect, both versions exist on both, the
// later one as a conflict copy named after its node.
func TestClusterConflict(t *testing.T) {
	dir := t.TempDir()
	ra, rb := newRepo(t, filepath.Join(dir, "a")), newRepo(t, filepath.Join(dir, "b"))
	a := serve(t, ra)
	b := serve(t, rb)
	pair(t, a, b)
	a.stop()
	b.stop()
	fa, fb := filepath.Join(dir, "x", "note"), filepath.Join(dir, "y", "note")
	randFile(t, fa, 1000, 5)
	randFile(t, fb, 2000, 6)
	must(t, ra, "put", fa)
	time.Sleep(10 * time.Millisecond) // b's write is the later one
	must(t, rb, "put", fb)
	serveAt(t, ra, a.addr)
	serveAt(t, rb, b.addr)
	later := "note.conflict-" + b.id[:8]
	for _, r := range []string{ra, rb} {
		waitFor(t, time.Minute, "the conflict copy on "+filepath.Base(r), func() (bool, string) {
			out := must(t, r, "ls")
			return strings.Contains(out, later), out
		})
	}
	for i, r := range []string{ra, rb} {
		got := filepath.Join(dir, fmt.Sprint("got", i))
		must(t, r, "get", "note", got)
		sameFile(t, fa, got)
		must(t, r, "get", later, got+"c")
		sameFile(t, fb, got+"c")
	}
}

// TestRemotePutResume: a client killed in the middle of a remote put; the
// rerun sends no more than what the node still lacked plus a chunk per
// stream, and the result is byte-identical.
func TestRemotePutResume(t *testing.T) {
	dir := t.TempDir()
	home := serve(t, newRepo(t, filepath.Join(dir, "home")))
	laptop := newRepo(t, filepath.Join(dir, "laptop"))
	lid := strings.TrimSpace(must(t, laptop, "id"))
	must(t, home.repo, "peer", "add", lid)
	must(t, laptop, "peer", "add", home.id, home.addr, "--name", "home")

	const size = 96 << 20
	src := filepath.Join(dir, "big")
	randFile(t, src, size, 7)
	cmd := exec.Command("loft", "--repo", laptop, "--node", "home", "put", src)
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	waitFor(t, 2*time.Minute, "part of the put on the node", func() (bool, string) {
		st := status(t, home.repo)
		if st.Node.Chunks >= 8 {
			cmd.Process.Kill()
			killed = true
			return true, ""
		}
		return false, fmt.Sprint(st.Node.Chunks, " chunks")
	})
	err := cmd.Wait()
	if !killed || err == nil {
		t.Skip("the put finished before the kill landed")
	}
	var st struct {
		Node struct {
			Stored int64 `json:"stored_bytes"`
			Chunks int64 `json:"chunks"`
		} `json:"node"`
	}
	json.Unmarshal([]byte(must(t, home.repo, "status", "--json")), &st)
	var res struct {
		Sent    int64 `json:"bytes_sent"`
		Skipped int64 `json:"bytes_skipped"`
		Files   int64 `json:"files"`
	}
	if err := json.Unmarshal([]byte(must(t, laptop, "--node", "home", "put", src, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	// Held bytes include a 12-byte header per chunk; chunks are at most 4 MiB.
	held := st.Node.Stored - 12*st.Node.Chunks
	if res.Files != 1 || res.Sent+res.Skipped != size || res.Sent > size-held+(4<<20) {
		t.Fatalf("rerun: %+v; the node held %d bytes before it", res, held)
	}
	out := filepath.Join(dir, "back")
	must(t, laptop, "--node", "home", "get", "big", out)
	sameFile(t, src, out)
	checkPasses(t, home.repo)
}

// TestClusterRestartReceiver: the receiving node is killed in the middle
// of replication and restarted; replication finishes, and no chunk it had
// confirmed is sent to it again.
func TestClusterRestartReceiver(t *testing.T) {
	dir := t.TempDir()
	a := serve(t, newRepo(t, filepath.Join(dir, "a")))
	b := serve(t, newRepo(t, filepath.Join(dir, "b")))
	pair(t, a, b)
	src := filepath.Join(dir, "big")
	randFile(t, src, 64<<20, 8)
	must(t, a.repo, "put", src)
	waitFor(t, 2*time.Minute, "part of the replication", func() (bool, string) {
		st := status(t, b.repo)
		return st.Node.Chunks >= 4, fmt.Sprint(st.Node.Chunks, " chunks on b")
	})
	b.kill()
	before := status(t, b.repo).Node.Chunks
	b = serveAt(t, b.repo, b.addr)
	waitFor(t, 2*time.Minute, "replication to finish", func() (bool, string) {
		st := status(t, a.repo)
		return st.Replication.Below == 0, fmt.Sprintf("%+v", st.Replication)
	})
	b.stop() // records its transfer figures as it stops
	var st struct {
		Node struct {
			Chunks int64 `json:"chunks"`
		} `json:"node"`
		Transfer struct {
			Dup      int64 `json:"duplicate_chunks_received"`
			Received int64 `json:"received_bytes"`
		} `json:"transfer"`
	}
	if err := json.Unmarshal([]byte(must(t, b.repo, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	total := status(t, a.repo).Replication.Chunks
	if st.Transfer.Dup != 0 || st.Node.Chunks != total || before == 0 {
		t.Fatalf("after the restart b received %d chunks it already held; it holds %d of %d (%d before the restart)",
			st.Transfer.Dup, st.Node.Chunks, total, before)
	}
	if st.Transfer.Received > 64<<20 {
		t.Fatalf("after the restart b received %d bytes, more than the file", st.Transfer.Received)
	}
	checkPasses(t, b.repo)
	out := filepath.Join(dir, "back")
	must(t, b.repo, "get", "big", out)
	sameFile(t, src, out)
}
