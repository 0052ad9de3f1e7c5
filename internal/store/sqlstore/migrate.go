package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change, rendered for a dialect.
type migration struct {
	version int
	name    string
	body    string
}

// migrations renders the embedded migration templates for d, in order.
// Numbering continues across the engines' history: databases created
// before the stores were merged recorded the same numbers.
func migrations(d dialect) ([]migration, error) {
	ts, err := template.New("").Option("missingkey=error").ParseFS(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []migration
	for _, t := range ts.Templates() {
		if t.Name() == "" {
			continue // the empty root
		}
		n, err := strconv.Atoi(strings.SplitN(t.Name(), "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", t.Name())
		}
		var b strings.Builder
		if err := t.Execute(&b, d.schema()); err != nil {
			return nil, fmt.Errorf("migration %s: %w", t.Name(), err)
		}
		out = append(out, migration{version: n, name: t.Name(), body: b.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies, in order and each in its own transaction, every
// migration newer than the database's recorded version. The version is
// read inside each transaction, so of processes opening a new database
// together (replicas, or serve and a ferry user command) one applies each
// migration and the others see it applied.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	ms, err := migrations(d)
	if err != nil {
		return err
	}
	// One session throughout: PostgreSQL's migration lock belongs to it.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	unlock, err := d.lockSchema(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer unlock()
	for _, m := range ms {
		if err := applyMigration(ctx, conn, d, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// applyMigration applies m unless the database has it already.
func applyMigration(ctx context.Context, conn *sql.Conn, d dialect, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	current, err := d.schemaVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if m.version <= current {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.body); err != nil {
		return err
	}
	if err := d.setSchemaVersion(ctx, tx, m.version); err != nil {
		return err
	}
	return tx.Commit()
}
