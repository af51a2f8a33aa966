// Package pgtest gives tests a fresh PostgreSQL database of their own on the
// server named by C2_TEST_POSTGRES (a postgres:// URL; .ci/postgres.sh starts
// a throwaway one). Without it the test is skipped with a message saying what
// is missing, or fails when C2_REQUIRE_POSTGRES=1 (CI).
package pgtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the server URL the tests use; RequireEnv makes its absence a failure.
const (
	Env        = "C2_TEST_POSTGRES"
	RequireEnv = "C2_REQUIRE_POSTGRES"
)

// Server returns the server URL, or skips (fails under C2_REQUIRE_POSTGRES=1)
// when none is configured.
func Server(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u == "" {
		msg := "PostgreSQL tests need " + Env + "=postgres://… (a server where databases may be created); " +
			"eval \"$(bash .ci/postgres.sh start /tmp/c2pg)\" starts a throwaway one"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return u
}

// Database creates an empty database on the server and returns its URL; it
// is dropped when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	return DatabaseOn(t, Server(t))
}

// DatabaseOn is Database on the server at server (a Cluster's URL).
func DatabaseOn(t testing.TB, server string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to %s: %v", Env, err)
	}
	defer conn.Close(context.Background())
	name := fmt.Sprintf("c2test_%d_%d", time.Now().UnixNano(), rand.IntN(1_000_000))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			return // the server is gone; it is throwaway
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	u.Path = "/" + name
	return u.String()
}
