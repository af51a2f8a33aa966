package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// BinEnv names the directory of PostgreSQL's server programs (initdb,
// pg_ctl); without it the newest /usr/lib/postgresql/*/bin is used.
const BinEnv = "C2_TEST_POSTGRES_BIN"

// Cluster is a private PostgreSQL server started for one test, which the test
// may stop and start again (a database restart in the middle of a window)
// without disturbing other tests.
type Cluster struct {
	// URL is the cluster's "postgres" database.
	URL  string
	t    testing.TB
	bin  string
	dir  string
	port int
}

// StartCluster initialises and starts a cluster on a free loopback port, as
// the postgres user when the test runs as root; it is stopped and removed
// when the test ends. Without PostgreSQL's server programs the test is
// skipped (fails under C2_REQUIRE_POSTGRES=1).
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := os.Getenv(BinEnv)
	if bin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Strings(dirs)
		if len(dirs) > 0 {
			bin = dirs[len(dirs)-1]
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); bin == "" || err != nil {
		msg := "this test starts its own PostgreSQL and needs its server programs (bash .ci/postgres.sh install, or " + BinEnv + ")"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "c2pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	c := &Cluster{t: t, bin: bin, dir: dir, port: port,
		URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	c.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
	c.Start()
	t.Cleanup(func() { c.Stop() })
	return c
}

// run runs one of the server programs as the cluster's owner.
func (c *Cluster) run(prog string, args ...string) {
	c.t.Helper()
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.t.Fatalf("%s: %v\n%s\n%s", prog, err, out, log)
	}
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", c.port, c.dir), "start")
}

// Stop stops the server (fast shutdown: open connections are cut).
func (c *Cluster) Stop() {
	c.t.Helper()
	c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "stop")
}
