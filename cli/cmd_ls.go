package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
)

func (e *runEnv) lsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "ls",
		Usage:     "list objects",
		ArgsUsage: "[PREFIX]",
		Description: "Lists one level below PREFIX, like ls: objects, and directories with a trailing slash.\n" +
			"Deleted objects (whose newest version is a deletion) are hidden unless --deleted is given.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "long", Aliases: []string{"l"}, Usage: "show mode, size, modification time and versions"},
			&ucli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "list every object below PREFIX"},
			&ucli.BoolFlag{Name: "deleted", Aliases: []string{"a"}, Usage: "include deleted objects"},
			atFlag(),
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 1 {
				return usageErrorf("loft ls [PREFIX]", "ls takes at most one PREFIX")
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
			arg := c.Args().First()
			prefix, err := names.ParsePrefix(arg)
			if err != nil {
				return err
			}
			// A trailing slash lists only what is below the name.
			opts := catalog.ListOptions{Recursive: c.Bool("recursive"), Deleted: c.Bool("deleted"), Below: strings.HasSuffix(arg, "/")}
			if !at.IsZero() {
				snap, err := n.(*node.Node).FindSnapshot(c.Context, prefix, at)
				if err != nil {
					return err
				}
				opts.AtSeq = snap.Seq
			}
			if c.Bool("json") {
				entries := []catalog.Entry{}
				err := n.List(c.Context, prefix, opts, func(en catalog.Entry) error {
					entries = append(entries, en)
					return nil
				})
				var refused *node.RefusedError
				if err != nil && !errors.As(err, &refused) {
					return err
				}
				if jerr := e.writeJSON(entries); jerr != nil {
					return jerr
				}
				return err
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
			err = n.List(c.Context, prefix, opts, func(en catalog.Entry) error {
				if !c.Bool("long") {
					_, err := fmt.Fprintln(e.Stdout, display(en.Name))
					return err
				}
				if en.Dir {
					_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t %s\n", "d---------", "-", "-", "-", display(en.Name))
					return err
				}
				name := display(en.Name)
				mode := modeString(en.Head.Mode)
				switch {
				case en.Head.Deleted:
					name += " (deleted)"
				case en.Head.Kind == catalog.KindSymlink:
					name += " -> " + display(en.Head.Target)
					mode = "l" + mode[1:]
				case en.Head.Kind == catalog.KindDir:
					mode = "d" + mode[1:]
				}
				_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t %s\n", mode, bytes(en.Head.Size),
					when(en.Head.MTime), en.Versions, name)
				return err
			})
			if ferr := tw.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
}
