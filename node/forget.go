package node

import (
	"context"
	"errors"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/retention"
)

// PurgeResult says what Purge dropped.
type PurgeResult struct {
	Purged []Purged      `json:"purged"`
	Failed []Failure     `json:"failed"`
	Took   time.Duration `json:"duration_ns"`
}

// Purged is one object Purge dropped, with the number of its versions.
type Purged struct {
	Name     string `json:"name"`
	Versions int64  `json:"versions"`
}

// Purge drops every version of each named object, deleted ones included,
// and with recursive of every object below a name: unlike Remove, nothing
// is left to restore, and the next gc reclaims the data that no other
// version holds. The purges travel to peers through the change log.
func (n *Node) Purge(ctx context.Context, objs []names.Name, recursive bool) (PurgeResult, error) {
	start := n.now()
	res := PurgeResult{Purged: []Purged{}, Failed: []Failure{}}
	for _, name := range objs {
		targets, fail, err := n.targets(ctx, name, recursive, true, "purge")
		if err != nil {
			return res, err
		}
		if fail != nil {
			res.Failed = append(res.Failed, *fail)
			continue
		}
		done, err := inBatches(ctx, n, targets, func(tx *catalog.Tx, t names.Name) (Purged, bool, error) {
			k, err := tx.Purge(ctx, t)
			if errors.Is(err, catalog.ErrNotFound) {
				return Purged{}, false, nil // purged meanwhile
			}
			return Purged{Name: t.String(), Versions: k}, err == nil, err
		})
		res.Purged = append(res.Purged, done...)
		if err != nil {
			return res, err
		}
	}
	res.Took = n.now().Sub(start)
	return res, nil
}

// Forget applies a retention policy to the snapshots of prefix and below
// and to the versions of every object below prefix (see
// catalog.Catalog.Forget); with dryRun, it only says what it would drop.
func (n *Node) Forget(ctx context.Context, prefix names.Prefix, policy retention.Policy, dryRun bool) (catalog.ForgetResult, error) {
	var res catalog.ForgetResult
	err := n.freeing(func() error {
		var err error
		res, err = n.cat.Forget(ctx, prefix, policy, time.Local, dryRun)
		return err
	})
	return res, err
}
