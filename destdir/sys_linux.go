package destdir

import (
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

func syncFS(f *os.File) error { return unix.Syncfs(int(f.Fd())) }

// lchtimes sets the times of the link base in directory dir, not of what
// it points at: dir is opened through the root, so it is inside, and base
// is one name, not followed.
func (d *Dir) lchtimes(dir, base string, mtime time.Time) error {
	if dir == "" {
		dir = "."
	}
	df, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	defer df.Close()
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(int(df.Fd()), base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lutimes", Path: path.Join(d.path, dir, base), Err: err}
	}
	return nil
}
