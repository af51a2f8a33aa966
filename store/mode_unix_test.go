//go:build unix

package store

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenModeDespiteUmask: a umask that strips the owner's write bit would
// make bbolt create a 0400 file; Open sets 0600 itself. Not parallel: the
// umask is process-wide.
func TestOpenModeDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "c2bot.db")
	s, err := Open(path, Options{})
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode under umask 0277 = %v, want 0600", fi.Mode().Perm())
	}
	mustCreate(t, s, newReq("contoso", Pending), Changes{})
}
