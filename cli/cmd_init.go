package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/store"
)

func (e *runEnv) initCommand() *ucli.Command {
	def := store.DefaultParams()
	return &ucli.Command{
		Name:  "init",
		Usage: "create a repository",
		Description: "Creates the repository chosen by --repo or LOFT_REPO (default: the XDG data directory).\n" +
			"The chunking parameters are fixed for the repository's lifetime.",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "chunk-min", Value: def.Min, Usage: "smallest chunk in bytes"},
			&ucli.IntFlag{Name: "chunk-avg", Value: def.Avg, Usage: "average chunk in bytes (a power of two)"},
			&ucli.IntFlag{Name: "chunk-max", Value: def.Max, Usage: "largest chunk in bytes"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErrorf("loft --repo DIR init", "init takes no arguments; choose the directory with --repo")
			}
			dir, _, err := e.repoDir(c)
			if err != nil {
				return err
			}
			p := store.Params{Min: c.Int("chunk-min"), Avg: c.Int("chunk-avg"), Max: c.Int("chunk-max")}
			n, err := node.Init(c.Context, dir, node.InitOptions{Params: p}, node.Options{Logger: e.log})
			if err != nil {
				return err
			}
			defer n.Close()
			info, err := n.Info(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(info)
			}
			fmt.Fprintf(e.Stdout, "created repository %s\nnode id   %s\nchunking  %s\n", info.Dir, info.NodeID, info.Chunking)
			return nil
		},
	}
}
