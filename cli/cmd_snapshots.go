package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
)

func (e *runEnv) snapshotsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "snapshots",
		Usage:     "list the snapshots mirror puts recorded",
		ArgsUsage: "[PREFIX]",
		Description: "Lists the snapshots of PREFIX and of everything below it (default: all), oldest first:\n" +
			"ID, time, prefix, what the tree held (files, directories, links, bytes), what the put\n" +
			"wrote new and how many objects it deleted. loft get PREFIX DEST --at ID restores one.",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 1 {
				return usageErrorf("loft snapshots [PREFIX]", "snapshots takes at most one PREFIX")
			}
			prefix, err := names.ParsePrefix(c.Args().First())
			if err != nil {
				return err
			}
			n, err := e.open(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			snaps, err := n.Snapshots(c.Context, prefix)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(snaps)
			}
			if len(snaps) == 0 {
				fmt.Fprintln(e.Stdout, "no snapshots (loft put --mirror DIR records one)")
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tPREFIX\tFILES\tDIRS\tLINKS\tSIZE\tNEW\tREMOVED")
			for _, s := range snaps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%d\n", s.ID, s.At.Local().Format(time.DateTime),
					display(s.Prefix), s.Files, s.Dirs, s.Links, bytes(s.Bytes), bytes(s.NewBytes), s.Removed)
			}
			return tw.Flush()
		},
	}
}

// atFlag is --at of get and ls.
func atFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "at", Usage: "as snapshot `ID` saw it, or the newest snapshot at or before a TIME"}
}

// atOf reads --at. Snapshots are this node's: not with --node.
func (e *runEnv) atOf(c *ucli.Context) (node.At, error) {
	s := c.String("at")
	if s == "" {
		return node.At{}, nil
	}
	if _, remote := e.nodeRef(c); remote {
		return node.At{}, usageErrorf("loft get NAME DEST --at ID", "--at reads this node's snapshots, not with --node")
	}
	return node.ParseAt(s, time.Local)
}
