package main

import (
	"context"
	"net/url"
	"time"

	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/store/postgres"
)

// storeOpenTimeout bounds connecting to PostgreSQL and migrating its schema.
const storeOpenTimeout = 30 * time.Second

// openStore opens the database dsn names: a postgres:// (or postgresql://)
// URL is the PostgreSQL store that several replicas share; anything else is
// the path of a bbolt file, which one process holds at a time.
func openStore(ctx context.Context, dsn string, now func() time.Time) (store.Backend, error) {
	opts := store.Options{Now: now}
	if postgres.IsURL(dsn) {
		ctx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
		defer cancel()
		return postgres.Open(ctx, dsn, opts)
	}
	return store.Open(dsn, opts)
}

// dbName names the database for logs and reports: a file path as it is, a
// URL without its password or query.
func dbName(dsn string) string {
	if !postgres.IsURL(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = ""
	return u.String()
}
