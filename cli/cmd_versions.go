package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/loftstore/loft/names"
	ucli "github.com/urfave/cli/v2"
)

func (e *runEnv) versionsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "versions",
		Usage:     "list the versions of an object, newest first",
		ArgsUsage: "NAME",
		Flags:     []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("loft versions NAME", "versions needs one NAME")
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
			vs, err := n.Versions(c.Context, name)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(vs)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCREATED\tSIZE\tMODE\tMODIFIED\tSHA256\tNOTE")
			for i, v := range vs {
				note := ""
				switch {
				case v.Deleted:
					note = "deleted"
				case v.RestoredFrom > 0:
					note = fmt.Sprintf("restored from %d", v.RestoredFrom)
				}
				if i == 0 {
					note = join(note, "current")
				}
				if v.Deleted {
					fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t-\t%s\n", v.Num, when(v.Created), note)
					continue
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Num, when(v.Created), bytes(v.Size),
					modeString(v.Mode), when(v.MTime), v.SHA256.String()[:12], note)
			}
			return tw.Flush()
		},
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}
