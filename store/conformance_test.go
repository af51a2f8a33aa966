package store_test

import (
	"path/filepath"
	"testing"

	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/store/storetest"
)

// TestConformance runs the store contract's suite against the bbolt file.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) string { return filepath.Join(t.TempDir(), "c2bot.db") },
		Open: func(_ testing.TB, path string, opts store.Options) (store.Backend, error) {
			return store.Open(path, opts)
		},
		Exclusive: true,
	})
}
