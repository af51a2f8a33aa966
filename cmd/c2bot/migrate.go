package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/store/postgres"
)

// cmdMigrateStore copies a bbolt file into an empty PostgreSQL database:
//
//	c2bot migrate-store --from c2bot.db --to postgres://…
//
// Every request (with its due time), audit event, outbox item,
// conversation reference and seen delivery id is copied in one transaction,
// ids and sequences kept. The file must not be in use (stop c2bot first);
// it is left as it was.
func cmdMigrateStore(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("c2bot migrate-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "bbolt database file to copy (c2bot stopped)")
	to := fs.String("to", "", "postgres:// URL of an empty database (its schema is created)")
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	switch {
	case *from == "" || *to == "":
		return usageError{"migrate-store needs --from FILE and --to postgres://…"}
	case postgres.IsURL(*from):
		return usageError{"--from is a bbolt file, not a database URL"}
	case !postgres.IsURL(*to):
		return usageError{"--to must be a postgres:// URL"}
	}
	src, err := store.Open(*from, store.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	dump, err := src.Export(ctx)
	if err != nil {
		return err
	}
	dst, err := openStore(ctx, *to, nil)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := dst.(store.Importer).Import(ctx, dump); err != nil {
		if errors.Is(err, postgres.ErrNotEmpty) {
			return fmt.Errorf("%s: %w; migrate-store only fills an empty database", dbName(*to), err)
		}
		return err
	}
	fmt.Fprintf(stdout, "copied %d requests, %d audit events, %d outbox items, %d conversations and %d delivery ids from %s to %s\n",
		len(dump.Requests), len(dump.Audit), len(dump.Outbox), len(dump.Conversations), len(dump.Seen), *from, dbName(*to))
	return nil
}
