package catalog

import (
	"context"
	"fmt"
	"testing"

	"github.com/loftstore/loft/names"
)

// BenchmarkAddVersion measures the catalog's serial work per file of a
// first put: a new object of one new chunk, 1,000 to a transaction, as the
// put's committer batches and prefetches them. The node ID is as long as a real one.
func BenchmarkAddVersion(b *testing.B) {
	ctx := context.Background()
	c, _ := newCatalog(b, Options{Origin: "i5ff4xvsqp3t2brxnrxnrib6nq5hy6v5pmynbnhahem36hpwml6q"})
	const perTx = 1000
	b.ResetTimer()
	for i := 0; i < b.N; i += perTx {
		err := c.Tx(ctx, func(tx *Tx) error {
			var vs []NewVersion
			var ns []names.Name
			for j := i; j < min(i+perTx, b.N); j++ {
				v := nv(fmt.Sprintf("go/src/pkg%03d/file%06d.go", j%500, j), fmt.Sprint(j), 1_000_000+j)
				vs, ns = append(vs, v), append(ns, v.Name)
			}
			if err := tx.Prefetch(ctx, ns); err != nil {
				return err
			}
			for _, v := range vs {
				if _, err := tx.AddVersion(ctx, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
