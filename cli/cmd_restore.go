package cli

import (
	"fmt"

	"github.com/loftstore/loft/names"
	ucli "github.com/urfave/cli/v2"
)

func (e *runEnv) restoreCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "restore",
		Usage:     "make an older version of an object the newest again",
		ArgsUsage: "NAME",
		Description: "Adds a version that points at the same chunks as version N: no data is copied.\n" +
			"Without --version, restores the newest version that is not a deletion (an undelete).",
		Flags: []ucli.Flag{
			&ucli.Int64Flag{Name: "version", Aliases: []string{"v"}, Usage: "the version `N` to restore"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("loft restore NAME --version N", "restore needs one NAME")
			}
			if c.Int64("version") < 0 {
				return usageErrorf("loft versions NAME", "--version must be a positive number")
			}
			n, err := e.target(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			name, err := names.ParseArg(c.Args().First())
			if err != nil {
				return err
			}
			v, err := n.Restore(c.Context, name, c.Int64("version"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(v)
			}
			if v.Unchanged {
				fmt.Fprintf(e.Stdout, "%s: version %d is already the newest\n", v.Name, v.Num)
				return nil
			}
			fmt.Fprintf(e.Stdout, "restored %s: version %d has the content of version %d (%s)\n",
				v.Name, v.Num, v.RestoredFrom, bytes(v.Size))
			return nil
		},
	}
}
