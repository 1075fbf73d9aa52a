package cli

import (
	"fmt"
	"io"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	ucli "github.com/urfave/cli/v2"
)

func (e *runEnv) rmCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "rm",
		Usage:     "delete objects (reversible: a deletion is a new version)",
		ArgsUsage: "NAME...",
		Description: "Adds a deletion version to each object. Older versions stay until pruned, so\n" +
			"`loft restore NAME` brings the object back. -r deletes every object below a NAME.\n\n" +
			"--purge drops every version of the objects instead (deleted ones too): nothing is left to\n" +
			"restore, snapshots no longer hold them, peers drop them too, and the next gc reclaims the\n" +
			"data (gc --grace 0s at once). It asks first on a terminal; otherwise it needs --yes.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "delete every object below each NAME"},
			&ucli.BoolFlag{Name: "purge", Usage: "drop every version of the objects, for good"},
			&ucli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask before --purge"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("loft rm NAME...", "rm needs at least one NAME")
			}
			objs := make([]names.Name, c.NArg())
			for i, arg := range c.Args().Slice() {
				var err error
				if objs[i], err = names.ParseArg(arg); err != nil {
					return err
				}
			}
			if c.Bool("purge") {
				return e.purge(c, objs)
			}
			n, err := e.target(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			res, err := n.Remove(c.Context, objs, c.Bool("recursive"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := e.writeJSON(res); err != nil {
					return err
				}
			} else {
				for _, v := range res.Deleted {
					fmt.Fprintf(e.Stdout, "deleted %s (version %d)\n", display(v.Name), v.Num)
				}
			}
			return e.failures(res.Failed, len(res.Deleted))
		},
	}
}

// purge is rm --purge.
func (e *runEnv) purge(c *ucli.Context, objs []names.Name) error {
	if _, remote := e.nodeRef(c); remote {
		return usageErrorf("loft rm --purge NAME...", "--purge works on this node's repository, not with --node")
	}
	if !c.Bool("yes") {
		in, ok := e.Stdin.(io.Writer) // a terminal is a file, both ways
		if !ok || e.IsTerminal == nil || !e.IsTerminal(in) {
			return usageErrorf("loft rm --purge --yes NAME...", "--purge drops every version for good: give --yes when not on a terminal")
		}
		what := display(objs[0].String())
		if len(objs) > 1 {
			what = fmt.Sprintf("%d names", len(objs))
		}
		if !e.confirm(fmt.Sprintf("drop every version of %s, for good?", what)) {
			return fmt.Errorf("rm --purge: %w", errNotConfirmed)
		}
	}
	n, err := e.open(c, false)
	if err != nil {
		return err
	}
	defer n.Close()
	res, err := n.Purge(c.Context, objs, c.Bool("recursive"))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if err := e.writeJSON(res); err != nil {
			return err
		}
	} else {
		for _, p := range res.Purged {
			fmt.Fprintf(e.Stdout, "purged %s (%s)\n", display(p.Name), plural(p.Versions, "version", "versions"))
		}
		if len(res.Purged) > 0 {
			fmt.Fprintln(e.Stdout, "loft gc reclaims their data (gc --grace 0s at once)")
		}
	}
	return e.failures(res.Failed, len(res.Purged))
}

// errNotConfirmed is a question answered no: the command stopped, as if
// interrupted, having changed nothing.
var errNotConfirmed = fault.New(fault.Interrupted, "not confirmed; nothing was dropped")
