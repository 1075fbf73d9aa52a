package testscripts

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchWrites watches the repository's directory, its chunk store and its
// locks for anything written, created, removed or renamed, until stop is
// called; stop returns what happened, one line per event. (A file that is
// only memory-mapped, as SQLite's -shm, is not seen: it is never flushed.)
func watchWrites(t *testing.T, repo string) (stop func() []string) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	dirs := map[int]string{}
	filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if wd, err := unix.InotifyAddWatch(fd, p, mask); err == nil {
				dirs[wd] = p
			}
		}
		return nil
	})
	return func() []string {
		defer unix.Close(fd)
		var out []string
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if n <= 0 || err != nil {
				return out
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := string(buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)])
				rel, _ := filepath.Rel(repo, filepath.Join(dirs[int(ev.Wd)], strings.TrimRight(name, "\x00")))
				out = append(out, fmt.Sprintf("%s mask %#x", rel, ev.Mask))
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}
}

// TestIdleServeWritesNothing: two paired nodes serve, with heartbeats every
// 200ms and replication passes every 300ms. Once the data is replicated and
// the loops have found nothing more to do, neither node writes anything to
// its repository for thirty heartbeats: heartbeats, replication passes,
// change exchanges and audits that find nothing new leave the disk alone.
func TestIdleServeWritesNothing(t *testing.T) {
	dir := t.TempDir()
	ra, rb := newRepo(t, filepath.Join(dir, "a")), newRepo(t, filepath.Join(dir, "b"))
	a, b := serve(t, ra), serve(t, rb)
	pair(t, a, b)
	src := filepath.Join(dir, "f")
	randFile(t, src, 3<<20, 1)
	must(t, ra, "put", src)
	for _, r := range []string{ra, rb} {
		waitFor(t, time.Minute, "every chunk with two copies on "+filepath.Base(r), func() (bool, string) {
			st := status(t, r)
			return st.Replication.Chunks > 0 && st.Replication.Below == 0 && len(st.Peers) == 1 && st.Peers[0].State == "online",
				fmt.Sprintf("%+v", st)
		})
	}
	// The last figures that moved (traffic rates going back to zero, the
	// loops' last results, the chunk counts peers tell each other, which
	// are up to 10s old) are written when they settle: wait for a quiet
	// two seconds, for at most a minute.
	deadline := time.Now().Add(time.Minute)
	for {
		stopA, stopB := watchWrites(t, ra), watchWrites(t, rb)
		time.Sleep(2 * time.Second)
		wa, wb := stopA(), stopB()
		if len(wa)+len(wb) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes never went quiet for 2s:\na: %s\nb: %s", strings.Join(wa, "; "), strings.Join(wb, "; "))
		}
	}
	stopA, stopB := watchWrites(t, ra), watchWrites(t, rb)
	time.Sleep(30 * 200 * time.Millisecond)
	for name, stop := range map[string]func() []string{"a": stopA, "b": stopB} {
		if got := stop(); len(got) > 0 {
			t.Errorf("idle node %s wrote to its repository:\n%s", name, strings.Join(got, "\n"))
		}
	}
	// Still alive and well: a change written now is exchanged as before.
	note := filepath.Join(dir, "note")
	randFile(t, note, 1000, 2)
	must(t, ra, "put", note)
	waitFor(t, time.Minute, "B to list note", func() (bool, string) {
		out := must(t, rb, "ls")
		return strings.Contains(out, "note"), out
	})
}
