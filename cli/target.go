package cli

import (
	"context"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
)

// repository is what the data commands need: this node's repository, or a
// peer's through --node.
type repository interface {
	List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error
	Versions(ctx context.Context, name names.Name) ([]catalog.Version, error)
	Remove(ctx context.Context, objs []names.Name, recursive bool) (node.RemoveResult, error)
	Restore(ctx context.Context, name names.Name, num int64) (node.RestoreResult, error)
	Stat(ctx context.Context) (node.StatResult, error)
	Get(ctx context.Context, target names.Prefix, dest string, opts node.GetOptions) (node.GetResult, error)
	Close() error
}

// target opens the repository a data command works on: with --node, the
// named peer ("default": the default-node setting), reached with this
// repository's identity; otherwise this repository.
func (e *runEnv) target(c *ucli.Context, createDefault bool) (repository, error) {
	ref, remote := e.nodeRef(c)
	n, err := e.open(c, createDefault || remote)
	if err != nil || !remote {
		return n, err
	}
	r, err := n.Remote(c.Context, ref)
	if err != nil {
		n.Close()
		return nil, err
	}
	return r, nil
}

// nodeRef returns the --node value and whether one was given.
func (e *runEnv) nodeRef(c *ucli.Context) (string, bool) {
	ref := c.String("node")
	if ref == "" {
		return "", false
	}
	if ref == "default" {
		ref = ""
	}
	return ref, true
}
