package catalog

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in order. Migration i (from 1)
// brings the schema from user_version i-1 to i. Files are never edited once
// released; changes come as new files.
func migrations() ([]string, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql") // sorted
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, string(b))
	}
	return out, nil
}

// migrate sets WAL mode and applies pending migrations in one transaction.
// Only a catalog being created starts from an empty schema, and its meta
// rows are written in the same transaction as the schema: an existing file
// without a schema is not a loft catalog, and is not written to.
func (c *Catalog) migrate(ctx context.Context, createMeta map[string]string) error {
	var have int
	if err := c.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
		return err
	}
	if have == 0 && createMeta == nil {
		return fmt.Errorf("%w: no loft schema in the file", ErrCorrupt)
	}
	var mode string
	if err := c.w.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return err
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	if have > len(ms) {
		return fmt.Errorf("%w: catalog schema %d, this loft knows %d", ErrNewerFormat, have, len(ms))
	}
	if have == len(ms) {
		return nil
	}
	return c.Tx(ctx, func(tx *Tx) error {
		// Re-read inside the write lock: another process may have migrated.
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
			return err
		}
		if have == 0 && createMeta == nil {
			return fmt.Errorf("%w: no loft schema in the file", ErrCorrupt)
		}
		for i := have; i < len(ms); i++ {
			if _, err := tx.conn.ExecContext(ctx, ms[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if have == 0 {
			for k, v := range createMeta {
				if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?)`, k, v); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(ms)))
		return err
	})
}
