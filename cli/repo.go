package cli

import (
	"errors"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/node"
)

// open opens the repository the flags and environment choose. With
// createDefault, the default repository is created when it does not exist
// yet (the first write creates it); an explicitly chosen one never is, so a
// typo in --repo is reported instead of silently starting a new repository.
func (e *runEnv) open(c *ucli.Context, createDefault bool) (*node.Node, error) {
	return e.openWith(c, createDefault, node.Options{})
}

// openWith is open with options (the logger is always the command line's).
func (e *runEnv) openWith(c *ucli.Context, createDefault bool, opts node.Options) (*node.Node, error) {
	dir, isDefault, err := e.repoDir(c)
	if err != nil {
		return nil, err
	}
	opts.Logger = e.log
	opts.MayRelease = opts.MayRelease || mayRelease[c.Command.Name]
	n, err := node.Open(c.Context, dir, opts)
	if errors.Is(err, node.ErrNoRepository) && createDefault && isDefault {
		n, err = node.Init(c.Context, dir, node.InitOptions{}, opts)
		switch {
		case err == nil:
			e.log.Info("created the default repository", "dir", dir)
		case errors.Is(err, node.ErrExists): // another loft created it just now
			n, err = node.Open(c.Context, dir, opts)
		}
	}
	if errors.Is(err, node.ErrNoRepository) {
		init := "loft init"
		if !isDefault {
			init += " --repo " + dir
		}
		return nil, fmt.Errorf("%w (create one with: %s)", err, init)
	}
	return n, err
}

// mayRelease lists the commands that only read or that free space: on a
// full disk they may use the repository's reserve (see node.Options).
var mayRelease = map[string]bool{"ls": true, "get": true, "versions": true, "stat": true, "check": true, "status": true,
	"rm": true, "gc": true, "tui": true, "id": true, "version": true}
