package cli

import (
	"errors"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/store"
)

func (e *runEnv) putCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "put",
		Usage:     "store files and directories (recursively) as objects",
		ArgsUsage: "PATH...",
		Description: "Each file becomes a new version of the object named after it: a file's base name, or\n" +
			"DIR/relative/path for files in a directory. --as NAME renames a single PATH; \"-\" reads\n" +
			"standard input and needs --as. Symbolic links named on the command line are followed,\n" +
			"inside directories they are skipped, as are devices, pipes and sockets (with a warning).\n" +
			"A file whose newest version already has the same content, mode and mtime is left as is.\n\n" +
			"--mirror DIR stores one directory exactly, as DIR's base name or --as PREFIX: directories\n" +
			"(also empty ones) and symbolic links are kept as entries of their own, a link is never\n" +
			"followed, and objects under the prefix that the tree no longer has are deleted. Every\n" +
			"mirror put records a snapshot (loft snapshots; loft get --at restores one).\n\n" +
			"A file whose size, mtime, ctime, inode and device are what the last put of its name saw,\n" +
			"and whose object has not changed since, is not read again (the files cache);\n" +
			"--force-read reads every file.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "as", Usage: "object name for a single PATH, or for - (standard input)"},
			&ucli.BoolFlag{Name: "mirror", Usage: "store one directory exactly: deletions, directories and links too, and a snapshot"},
			&ucli.BoolFlag{Name: "force-read", Usage: "read every file, even those the files cache says are unchanged"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			paths := c.Args().Slice()
			var as names.Name
			switch {
			case len(paths) == 0:
				return usageErrorf("loft put FILE...", "put needs at least one PATH")
			case c.String("as") != "" && len(paths) > 1:
				return usageErrorf("loft put PATH --as NAME", "--as names one PATH, not %d", len(paths))
			case c.String("as") != "":
				var err error
				if as, err = names.Parse(c.String("as")); err != nil {
					return err
				}
			}
			if c.Bool("mirror") && len(paths) != 1 {
				return usageErrorf("loft put --mirror DIR [--as PREFIX]", "--mirror takes one directory, not %d paths", len(paths))
			}
			if ref, remote := e.nodeRef(c); remote {
				if c.Bool("mirror") {
					return usageErrorf("loft put --mirror DIR", "--mirror works on this node's repository only, not with --node")
				}
				return e.remotePut(c, ref, paths, as)
			}
			n, err := e.open(c, true)
			if err != nil {
				return err
			}
			defer n.Close()
			opts := node.PutOptions{As: as, Stdin: e.Stdin, Mirror: c.Bool("mirror"), ForceRead: c.Bool("force-read")}
			if show := e.transferProgress(c, "put"); show != nil {
				opts.Progress = func(p node.PutProgress) { show(p.Done, p.Bytes, p.BytesTotal, p.Files, p.FilesTotal) }
			}
			res, err := n.Put(c.Context, paths, opts)
			for _, s := range res.Skipped {
				e.warnf("skipped %s: %s", s.Path, s.Reason)
			}
			for _, w := range res.Warnings {
				e.warnf("%s: %s", w.Path, w.Reason)
			}
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := e.writeJSON(res); err != nil {
					return err
				}
			} else if res.Files+res.Unchanged > 0 || len(res.Failed) == 0 {
				fmt.Fprintln(e.Stdout, withRate(fmt.Sprintf("stored %s (%s), %d unchanged: %s new in %s, %s reused",
					plural(res.Files, "file", "files"), bytes(res.Bytes), res.Unchanged, bytes(res.NewBytes),
					plural(res.NewChunks, "chunk", "chunks"), plural(res.ReusedChunks, "chunk", "chunks")),
					res.Bytes, res.Duration))
				if res.Pruned > 0 {
					fmt.Fprintf(e.Stdout, "pruned %s beyond the keep-versions setting\n", plural(res.Pruned, "old version", "old versions"))
				}
				if s := res.Snapshot; s != nil {
					fmt.Fprintf(e.Stdout, "snapshot %s of %s: %s, %s, %s (%s); %s gone from the tree\n", s.ID, display(s.Prefix),
						plural(s.Files, "file", "files"), plural(s.Dirs, "directory", "directories"),
						plural(s.Links, "link", "links"), bytes(s.Bytes), plural(s.Removed, "object", "objects"))
				}
			}
			return e.failures(res.Failed, int(res.Files+res.Unchanged))
		},
	}
}

// failures reports inputs that failed. When nothing succeeded and one input
// failed, its own error is the command's error, with its own exit code.
func (e *runEnv) failures(failed []node.Failure, succeeded int) error {
	if len(failed) == 0 {
		return nil
	}
	if len(failed) == 1 && succeeded == 0 {
		return failed[0].Err
	}
	pe := &partialError{failed: len(failed), total: len(failed) + succeeded}
	for _, f := range failed {
		if strings.Contains(f.Msg, f.Path) {
			fmt.Fprintf(e.Stderr, "loft: %s\n", display(f.Msg))
		} else {
			fmt.Fprintf(e.Stderr, "loft: %s: %s\n", display(f.Path), display(f.Msg))
		}
		pe.integrity = pe.integrity || errors.Is(f.Err, store.ErrIntegrity)
	}
	return pe
}

// remotePut stores files on a peer (--node), sending only the chunks it lacks.
func (e *runEnv) remotePut(c *ucli.Context, ref string, paths []string, as names.Name) error {
	n, err := e.open(c, true)
	if err != nil {
		return err
	}
	defer n.Close()
	r, err := n.Remote(c.Context, ref)
	if err != nil {
		return err
	}
	res, err := r.Put(c.Context, paths, node.PutOptions{As: as, Stdin: e.Stdin})
	for _, s := range res.Skipped {
		e.warnf("skipped %s: %s", s.Path, s.Reason)
	}
	for _, w := range res.Warnings {
		e.warnf("%s: %s", w.Path, w.Reason)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if err := e.writeJSON(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.Stdout, withRate(fmt.Sprintf("stored %s (%s) on %s, %d unchanged: sent %s, skipped %s the node holds",
			plural(res.Files, "file", "files"), bytes(res.Bytes), r.Peer.ID[:8], res.Unchanged,
			bytes(res.BytesSent), bytes(res.BytesSkipped)), res.Bytes, res.Duration))
	}
	return e.failures(res.Failed, int(res.Files+res.Unchanged))
}
