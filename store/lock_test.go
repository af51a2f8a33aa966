package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helperDBEnv names the database a child test process opens and holds.
const helperDBEnv = "C2_STORE_TEST_HOLD_DB"

// TestHelperProcess is not a test: run as a child process by
// TestOpenLockedByOtherProcess, it opens the database named by helperDBEnv,
// says "locked" on stdout and holds the file until its stdin closes.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperDBEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // returns at EOF
	_ = s.Close()
	os.Exit(0)
}

func TestOpenLockedByOtherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "c2bot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperDBEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("child did not take the lock: %q %v", line, err)
	}

	_, err = Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while another process holds the file = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another c2bot") {
		t.Errorf("error %q does not name the file or the likely cause", err)
	}

	// Once the child exits, the file is free.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	s, err := Open(path, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Open after the child exited: %v", err)
	}
	_ = s.Close()
}

func TestOpenLockedInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c2bot.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 200 * time.Millisecond
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: timeout})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("open %s: database in use by another process (is another c2bot running?)", path)
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// Generous bound: the point is that Open gives up instead of waiting
	// forever (bbolt's zero timeout), not how precisely it times out.
	if elapsed > timeout+5*time.Second {
		t.Errorf("second Open took %v with LockTimeout %v", elapsed, timeout)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{LockTimeout: timeout})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = s2.Close()
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c2bot.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new database mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenLeavesExistingModeAlone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c2bot.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newReq("contoso", Pending), Changes{})
	s.Close()
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, "r-1"); err != nil {
		t.Errorf("existing data: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("existing file mode changed to %v", fi.Mode().Perm())
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "c2bot.db")
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), path) || errors.Is(err, ErrLocked) {
		t.Errorf("Open in a missing directory = %v, want an error naming the path", err)
	}
}
