package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
)

func (e *runEnv) getCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "get",
		Usage:     "write an object, or every object under a prefix, to the file system",
		ArgsUsage: "NAME [DEST]",
		Description: "For one object, DEST is a file or an existing directory (default: the object's base name\n" +
			"in the current directory); \"-\" writes to standard output. For a prefix, DEST is the directory\n" +
			"that receives what is below NAME (default: NAME's base name). Files are written to a temporary\n" +
			"name, verified, flushed and renamed, so a failed get never leaves a partial file; existing\n" +
			"files are replaced. Mode and modification time are restored, and stored directories and\n" +
			"symbolic links (from put --mirror) too; a link is made as a link, never followed.\n" +
			"--at restores the tree (or one object) as a snapshot saw it: give the snapshot's ID, or a\n" +
			"time for the newest snapshot taken at or before it (2026-12-07, \"2026-12-07 14:30\", RFC 3339).",
		Flags: []ucli.Flag{
			&ucli.Int64Flag{Name: "version", Aliases: []string{"v"}, Usage: "version `N` of a single object (default: the newest)"},
			atFlag(),
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			args := c.Args().Slice()
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf("loft get NAME [DEST]", "get needs a NAME and at most one DEST")
			}
			if c.Int64("version") < 0 {
				return usageErrorf("loft versions NAME", "--version must be a positive number")
			}
			dest := ""
			if len(args) == 2 {
				dest = args[1]
			}
			at, err := e.atOf(c)
			if err != nil {
				return err
			}
			n, err := e.target(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			opts := node.GetOptions{Version: c.Int64("version"), Stdout: e.Stdout, At: at}
			if show := e.transferProgress(c, "get"); show != nil {
				opts.Progress = func(p node.GetProgress) { show(p.Done, p.Bytes, p.BytesTotal, p.Files, p.FilesTotal) }
			}
			target, err := names.ParsePrefix(args[0])
			if err != nil {
				return err
			}
			res, err := n.Get(c.Context, target, dest, opts)
			if err != nil {
				return err
			}
			if dest != "-" && (res.Files > 0 || len(res.Failed) == 0) {
				if c.Bool("json") {
					if err := e.writeJSON(res); err != nil {
						return err
					}
				} else {
					fmt.Fprintln(e.Stdout, withRate(fmt.Sprintf("restored %s (%s)", plural(res.Files, "file", "files"),
						bytes(res.Bytes)), res.Bytes, res.Duration))
				}
			}
			return e.failures(res.Failed, int(res.Files))
		},
	}
}
