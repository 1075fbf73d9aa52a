package destdir

import (
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

func syncFS(f *os.File) error { return unix.Syncfs(int(f.Fd())) }

// lchtimes sets the times of the link base in the directory r (named
// display in errors), not of what it points at: base is one name, not
// followed.
func lchtimes(r *os.Root, display, base string, mtime time.Time) error {
	df, err := r.Open(".")
	if err != nil {
		return err
	}
	defer df.Close()
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(int(df.Fd()), base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lutimes", Path: path.Join(display, base), Err: err}
	}
	return nil
}
