package cli

import (
	"fmt"

	"github.com/loftstore/loft/names"
	ucli "github.com/urfave/cli/v2"
)

func (e *runEnv) rmCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "rm",
		Usage:     "delete objects (reversible: a deletion is a new version)",
		ArgsUsage: "NAME...",
		Description: "Adds a deletion version to each object. Older versions stay until pruned, so\n" +
			"`loft restore NAME` brings the object back. -r deletes every object below a NAME.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "delete every object below each NAME"},
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
