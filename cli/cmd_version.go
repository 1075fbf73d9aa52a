package cli

import (
	"fmt"
	"runtime"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/catalog"
)

// versionInfo is what `loft version` prints.
type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	Format  int    `json:"repository_format"`
}

func (e *runEnv) versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print loft's version and the repository format it writes",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			v := versionInfo{Version: version, Go: runtime.Version(), Format: catalog.Format}
			if c.Bool("json") {
				return e.writeJSON(v)
			}
			_, err := fmt.Fprintf(e.Stdout, "loft %s (%s), repository format %d\n", v.Version, v.Go, v.Format)
			return err
		},
	}
}
