package node

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/destdir"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
)

// source is one thing to put: a regular file, or a stream (standard input,
// a named pipe given on the command line).
type source struct {
	name   names.Name // object name
	path   string     // file to open; "-" for standard input
	stream bool       // path is a pipe: read it like standard input
	mode   fs.FileMode
	// What a mirror put's walk found: a directory or a link (stored as an
	// entry, without reading), and for every kind the stat the reader
	// made (lstat), which the files cache compares and directories and
	// links keep.
	kind   catalog.Kind
	target string
	info   fs.FileInfo
	// cache is what the files cache held for this file and others of its
	// batch when the put looked (nil: not looked up).
	cache catalog.FilesCache
}

// open opens the source. For a regular file it returns its stat too, for
// changed after the read (nil for a stream). A stream of the system's
// (standard input as a file, a named pipe) reads through cancelable, so
// the end of ctx stops a read that blocks; another reader given as stdin
// is read directly (see PutOptions.Stdin), which also keeps what it
// records as it reads (an S3 body's digests) ordered before the commit.
func (s *source) open(ctx context.Context, stdin io.Reader) (io.ReadCloser, fs.FileInfo, error) {
	switch {
	case s.path == "-":
		if _, ok := stdin.(*os.File); !ok {
			return io.NopCloser(stdin), nil, nil
		}
		return io.NopCloser(cancelable(ctx, func() (io.ReadCloser, error) { return io.NopCloser(stdin), nil })), nil, nil
	case s.stream:
		p := s.path
		return io.NopCloser(cancelable(ctx, func() (io.ReadCloser, error) { return os.Open(p) })), nil, nil
	}
	f, fi, err := openRegular(s.path)
	if err != nil {
		return nil, nil, err
	}
	return f, fi, nil
}

// changed reports whether the file rc, opened by open with stat before,
// looks changed since: something wrote it while it was read.
func changed(rc io.ReadCloser, before fs.FileInfo) bool {
	f, ok := rc.(*os.File)
	if !ok || before == nil {
		return false
	}
	after, err := f.Stat()
	return err == nil && !sameFile(before, after)
}

// Skip is an input put passed over on purpose, with the reason.
type Skip struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Failure is an input an operation could not handle, with the error and
// its kind (package fault) by name.
type Failure struct {
	Path string `json:"path"`
	Err  error  `json:"-"`
	Msg  string `json:"error"`
	Code string `json:"code"`
}

func newFailure(p string, err error) Failure {
	return Failure{Path: p, Err: err, Msg: err.Error(), Code: fault.Of(err).String()}
}

var (
	// ErrNeedName means a source has no name of its own (stdin, "/").
	ErrNeedName = fault.New(fault.Invalid, "needs a name: use --as NAME")
	// ErrSpecialFile means a path given to put is a device or a socket.
	ErrSpecialFile = fault.New(fault.Invalid, "is not a regular file, a directory or a pipe")
	// ErrDuplicateName means two inputs of one put would store under one name.
	ErrDuplicateName = fault.New(fault.Invalid, "two inputs would be stored under one name")
)

// rootName returns the object name for a command-line path.
func rootName(p string, as names.Name) (names.Name, error) {
	if !as.IsZero() {
		return as, nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return names.Name{}, err
	}
	base := filepath.Base(abs)
	if base == string(filepath.Separator) || base == "." {
		return names.Name{}, fmt.Errorf("%s %w", p, ErrNeedName)
	}
	return names.Parse(base)
}

// walk turns command-line paths into sources in a stable order. Symlinks
// named on the command line are followed, and a named pipe there is read
// like standard input; devices and sockets there are errors. Inside
// directories, symlinks, pipes, devices and sockets are skipped with a
// warning. Directories themselves are not objects: an empty directory
// stores nothing. Two command-line inputs with one name are an error: the
// second would silently become a version of the first.
func walk(ctx context.Context, paths []string, as names.Name, emit func(*source) error, skip func(Skip), fail func(Failure)) error {
	roots := make(map[names.Name]string) // object name -> the input that has it
	claim := func(name names.Name, p string) bool {
		if prev, ok := roots[name]; ok {
			fail(newFailure(p, fmt.Errorf("%w: %s and %s are both %q (use --as, one at a time)", ErrDuplicateName, prev, p, name)))
			return false
		}
		roots[name] = p
		return true
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "-" {
			if as.IsZero() {
				fail(newFailure(p, fmt.Errorf("standard input %w", ErrNeedName)))
			} else if claim(as, p) {
				if err := emit(&source{name: as, path: "-", mode: 0o644}); err != nil {
					return err
				}
			}
			continue
		}
		name, err := rootName(p, as)
		if err != nil {
			fail(newFailure(p, err))
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			fail(newFailure(p, err))
			continue
		}
		if !claim(name, p) {
			continue
		}
		switch {
		case fi.Mode().IsRegular():
			if err := emit(&source{name: name, path: p, mode: fi.Mode(), info: fi}); err != nil {
				return err
			}
			continue
		case fi.Mode()&fs.ModeNamedPipe != 0:
			if err := emit(&source{name: name, path: p, stream: true, mode: 0o644}); err != nil {
				return err
			}
			continue
		case !fi.IsDir():
			fail(newFailure(p, fmt.Errorf("%s %w (%s)", p, ErrSpecialFile, destdir.KindOf(fi.Mode()))))
			continue
		}
		// A directory named through a symbolic link is walked where the
		// link points; names stay relative to the path given.
		root := p
		if li, err := os.Lstat(p); err == nil && li.Mode()&fs.ModeSymlink != 0 {
			if root, err = filepath.EvalSymlinks(p); err != nil {
				fail(newFailure(p, err))
				continue
			}
		}
		err = filepath.WalkDir(root, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				fail(newFailure(fp, err))
				if d != nil && d.IsDir() && fp != root {
					return fs.SkipDir
				}
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			t := d.Type()
			switch {
			case t.IsDir():
				return nil
			case t&fs.ModeSymlink != 0:
				skip(Skip{Path: fp, Reason: "symbolic link, not followed"})
				return nil
			case !t.IsRegular():
				skip(Skip{Path: fp, Reason: "not a regular file (" + destdir.KindOf(t) + ")"})
				return nil
			}
			rel, err := filepath.Rel(root, fp)
			if err != nil {
				fail(newFailure(fp, err))
				return nil
			}
			objName, err := name.AsPrefix().Join(filepath.ToSlash(rel))
			if err != nil {
				fail(newFailure(fp, err))
				return nil
			}
			// Stat by the readers, several at once (see putter.read).
			return emit(&source{name: objName, path: fp})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ErrNotDir means --mirror was given something other than one directory.
var ErrNotDir = fault.New(fault.Invalid, "is not a directory: --mirror takes one directory")

// walkMirror walks the directory root for a mirror put, the tree to be
// stored under prefix exactly: the directory itself (as prefix), every
// directory and symbolic link below it as entries of their own (a link is
// never followed), and every regular file. Pipes, devices and sockets are
// skipped with a warning. A directory that cannot be read is a Failure,
// and partial is told of it: what lies below it is not known, so nothing
// below it may be taken for gone. root itself may be a link to a
// directory, which is followed, as on the command line.
func walkMirror(ctx context.Context, root string, prefix names.Name, emit func(*source) error, skip func(Skip), fail func(Failure), partial func(names.Name)) error {
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %w", root, ErrNotDir)
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	return filepath.WalkDir(root, func(fp string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		name := prefix
		if fp != root {
			rel, rerr := filepath.Rel(root, fp)
			if rerr == nil {
				name, rerr = prefix.AsPrefix().Join(filepath.ToSlash(rel))
			}
			if rerr != nil {
				fail(newFailure(fp, rerr))
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if err != nil {
			// WalkDir reports a directory it cannot read a second time,
			// after visiting it: its entry is stored, its contents are not
			// known.
			fail(newFailure(fp, err))
			if d != nil && d.IsDir() {
				partial(name)
				return fs.SkipDir
			}
			return nil
		}
		// The readers stat each entry and read each link, several at once
		// (see putter.read); the walk only lists.
		src := &source{name: name, path: fp}
		switch t := d.Type(); {
		case t.IsDir():
			src.kind = catalog.KindDir
		case t&fs.ModeSymlink != 0:
			src.kind = catalog.KindSymlink
		case !t.IsRegular():
			skip(Skip{Path: fp, Reason: "not a regular file (" + destdir.KindOf(t) + ")"})
			return nil
		}
		return emit(src)
	})
}

// openRegular opens a file for reading and checks, on the open descriptor,
// that it is a regular file: a path swapped for a pipe between the walk and
// the open must not hang the put. O_NONBLOCK keeps the open itself from
// blocking on a pipe; it does not affect reads of regular files.
func openRegular(p string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file (%s)", p, destdir.KindOf(fi.Mode()))
	}
	return f, fi, nil
}

// sameFile reports whether a file looks unchanged between two stats.
func sameFile(a, b fs.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// countInputs sums the regular files and bytes under paths, for progress.
// It stops early when ctx ends.
// cancelable returns a reader of open's stream that fails with ctx's cause
// once ctx ends, even while a read (or the open) blocks, as on a pipe whose
// writer is idle: the blocked call is left to a goroutine that ends with
// the stream or the process.
func cancelable(ctx context.Context, open func() (io.ReadCloser, error)) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		r, err := open()
		if err == nil {
			_, err = io.Copy(pw, r)
			r.Close()
		}
		pw.CloseWithError(err)
	}()
	context.AfterFunc(ctx, func() { pr.CloseWithError(context.Cause(ctx)) })
	return pr
}

func countInputs(ctx context.Context, paths []string, add func(files, bytes int64)) {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() {
			add(1, fi.Size())
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					add(1, info.Size())
				}
			}
			return nil
		})
	}
}
