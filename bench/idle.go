package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// idle measures what an idle serving node writes to its repository: two
// nodes paired, heartbeats at the default 2s, a file replicated between
// them; once they have settled, every write, creation, removal or rename
// of a file in either repository (inotify, all directories) is counted for
// a minute (20s with -quick). The target is none.
func (b *bench) idle(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("idle: two serving nodes, after replication")
	var ss []*server
	for _, name := range []string{"idle-a", "idle-b"} {
		repo, err := b.initRepo(ctx, name)
		if err != nil {
			return err
		}
		if err := b.configure(ctx, repo, "replicate-interval", "2s"); err != nil {
			return err
		}
		s, err := b.serve(ctx, name, repo)
		if err != nil {
			return err
		}
		defer s.stop()
		ss = append(ss, s)
	}
	if err := b.invite(ctx, ss[0], ss[1]); err != nil {
		return err
	}
	src := filepath.Join(b.dir, "idle.bin")
	if err := writeRandomFile(src, 8<<20, 31); err != nil {
		return err
	}
	if _, err := b.loftCmd(ctx, ss[0].repo, "put", src); err != nil {
		return err
	}
	err := waitFor(ctx, 2*time.Minute, time.Second, func() (bool, error) {
		for _, s := range ss {
			st, err := b.status(ctx, s.repo)
			if err != nil || st.Replication.Chunks == 0 || st.Replication.Below > 0 {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	// Figures that moved settle within a few heartbeats (the chunk counts
	// peers tell each other are up to 10s old).
	time.Sleep(15 * time.Second)
	window := time.Minute
	if b.quick {
		window = 20 * time.Second
	}
	var writes int
	watchers := make([]func() map[string]int, len(ss))
	for i, s := range ss {
		stop, err := watchRepo(s.repo)
		if err != nil {
			return err
		}
		watchers[i] = stop
	}
	time.Sleep(window)
	for i, s := range ss {
		for path, n := range watchers[i]() {
			writes += n
			rel, _ := filepath.Rel(b.dir, path)
			fmt.Printf("  written while idle: %s (%d events)\n", rel, n)
		}
		if err := s.alive(); err != nil {
			return err
		}
	}
	per := func(n float64) string { return fmt.Sprintf("%.1f", n/window.Minutes()/float64(len(ss))) }
	verdict := "ok"
	if writes > 0 {
		verdict = "MISSED"
	}
	b.add(row{name: "idle serve: file writes to the repository per minute (each node)", value: per(float64(writes)),
		limit: fmt.Sprintf("heartbeats every 2s, %s watched", window), target: "0", verdict: verdict})
	return nil
}

// watchRepo counts what is written, created, removed or renamed in every
// directory of repo until the returned function is called, which returns
// the counts by file.
func watchRepo(repo string) (func() map[string]int, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	dirs := map[int32]string{}
	filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if wd, err := unix.InotifyAddWatch(fd, p, mask); err == nil {
				dirs[int32(wd)] = p
			}
		}
		return nil
	})
	return func() map[string]int {
		defer unix.Close(fd)
		out := map[string]int{}
		buf := make([]byte, 64<<10)
		for {
			k, err := unix.Read(fd, buf)
			if k <= 0 || err != nil {
				return out
			}
			for off := 0; off+unix.SizeofInotifyEvent <= k; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := ""
				if ev.Len > 0 {
					raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
					name = strings.TrimRight(string(raw), "\x00")
				}
				out[filepath.Join(dirs[ev.Wd], name)+" "+eventKinds(ev.Mask)]++
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}, nil
}

// eventKinds names the inotify events in mask.
func eventKinds(mask uint32) string {
	var out []string
	for _, k := range []struct {
		bit  uint32
		name string
	}{{unix.IN_MODIFY, "modify"}, {unix.IN_CREATE, "create"}, {unix.IN_DELETE, "delete"},
		{unix.IN_MOVED_TO, "rename"}, {unix.IN_CLOSE_WRITE, "close-after-write"}, {unix.IN_ATTRIB, "attributes"}} {
		if mask&k.bit != 0 {
			out = append(out, k.name)
		}
	}
	return "[" + strings.Join(out, ",") + "]"
}
