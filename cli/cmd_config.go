package cli

import (
	"fmt"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/catalog"
)

func (e *runEnv) configCommand() *ucli.Command {
	settings := "settings:\n"
	for _, s := range catalog.Settings() {
		settings += fmt.Sprintf("   %-14s %s (default %s)\n", s.Key, s.Help, s.Default)
	}
	return &ucli.Command{
		Name:        "config",
		Usage:       "show or change repository settings",
		ArgsUsage:   "[get KEY | set KEY VALUE]",
		Description: "Without arguments lists every setting.\n\n" + settings,
		Flags:       []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			args := c.Args().Slice()
			switch {
			case len(args) == 0:
				n, err := e.open(c, false)
				if err != nil {
					return err
				}
				defer n.Close()
				vals, keys, err := n.Config(c.Context)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return e.writeJSON(vals)
				}
				tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', 0)
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\n", k, vals[k])
				}
				return tw.Flush()
			case len(args) == 2 && args[0] == "get":
				n, err := e.open(c, false)
				if err != nil {
					return err
				}
				defer n.Close()
				v, err := n.ConfigGet(c.Context, args[1])
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return e.writeJSON(map[string]string{args[1]: v})
				}
				_, err = fmt.Fprintln(e.Stdout, v)
				return err
			case len(args) == 3 && args[0] == "set":
				n, err := e.open(c, true)
				if err != nil {
					return err
				}
				defer n.Close()
				if err := n.ConfigSet(c.Context, args[1], args[2]); err != nil {
					return err
				}
				if c.Bool("json") {
					return e.writeJSON(map[string]string{args[1]: args[2]})
				}
				return nil
			}
			return usageErrorf("loft config set keep-versions 20", "config takes no arguments, get KEY, or set KEY VALUE")
		},
	}
}
