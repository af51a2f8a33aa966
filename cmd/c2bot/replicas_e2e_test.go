package main

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	slackbot "github.com/c2bot/c2bot/bot/slack"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
	"github.com/c2bot/c2bot/store/postgres/pgtest"
)

// dbPassword is put in the replicas' database URL.
const dbPassword = "pg-secret-7c1e9b"

// replicaRig is three c2bot serve processes on one PostgreSQL database,
// behind one fake Slack workspace and one sandbox tenant.
type replicaRig struct {
	*slackRig
	envs  []map[string]string
	procs []*proc
	all   []*proc // every process started, for the logs
	dbURL string
}

// newReplicaRig starts n replicas in Slack HTTP mode on a fresh database.
func newReplicaRig(t *testing.T, n int) *replicaRig {
	t.Helper()
	return newReplicaRigOn(t, n, pgtest.Database(t))
}

// newReplicaRigOn starts n replicas on the database at db.
func newReplicaRigOn(t *testing.T, n int, db string) *replicaRig {
	t.Helper()
	// A password in the URL (the throwaway cluster trusts loopback and
	// ignores it): it must never reach the logs.
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), dbPassword)
	db = u.String()
	r := &replicaRig{slackRig: newSlackRig(t, false), dbURL: db}
	for range n {
		env := map[string]string{}
		for k, v := range r.env {
			env[k] = v
		}
		env["C2_DB"] = db
		env["C2_LISTEN"] = freeAddr(t)
		r.envs = append(r.envs, env)
		r.procs = append(r.procs, startBot(t, env, "serve"))
		r.all = append(r.all, r.procs[len(r.procs)-1])
	}
	r.env["C2_DB"] = db
	return r
}

// restart starts replica i again (after it was killed or stopped).
func (r *replicaRig) restart(t *testing.T, i int) {
	t.Helper()
	r.procs[i] = startBot(t, r.envs[i], "serve")
	r.all = append(r.all, r.procs[i])
}

// term stops replica i with SIGTERM, as a rolling update does, and waits.
func (r *replicaRig) term(t *testing.T, i int) {
	t.Helper()
	p := r.procs[i]
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("replica did not stop on SIGTERM")
	}
}

// logs is every replica's output so far.
func (r *replicaRig) logs() string {
	var b strings.Builder
	for _, p := range r.all {
		b.WriteString(p.logs.String())
	}
	return b.String()
}

// requestAndApprove asks for a fix on replica ask and approves it with a
// double click whose halves land on replicas a and b; it returns the card
// and when the card said applied.
func (r *replicaRig) requestAndApprove(t *testing.T, window string, ask, a, b int) (slacktest.Message, time.Time) {
	t.Helper()
	r.slash(t, r.procs[ask], "fix --for "+window, "trig.replicas."+window)
	card := r.wait(t, 30*time.Second, "approval card", isCard("Approval needed:"))
	first := clickPayload(t, card, "Approve", slackApprover, "1700000500.000100")
	second := clickPayload(t, card, "Approve", slackApprover, "1700000500.000900")
	var wg sync.WaitGroup
	for i, pl := range []map[string]any{first, second} {
		url := r.procs[[]int{a, b}[i]].url
		req := slacktest.NewInteractionRequest(url+slackbot.PathInteractions, slackSecret, time.Now(), pl)
		wg.Go(func() {
			if _, err := sendSigned(req); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	_, seen := r.waitApplied(t, card)
	return card, seen
}

// checkOnce checks, with every replica stopped, that r-1 was applied and
// reverted once, with one card and one revert notice.
func (r *replicaRig) checkOnce(t *testing.T, card slacktest.Message) {
	t.Helper()
	if n := patches(r.sb, securityDefaults); n != 2 {
		t.Errorf("security defaults PATCHed %d times; want one apply and one revert", n)
	}
	for _, p := range r.procs {
		_ = p.cmd.Process.Kill()
	}
	r.checkPostedOnce(t, card)
	r.checkTokens(t, r.logs())
	if strings.Contains(r.logs(), dbPassword) {
		t.Error("the database password appears in the logs")
	}
	actions := auditActions(t, r.dbURL, "r-1")
	if count(actions, "approved") != 1 || count(actions, "applied") != 1 || count(actions, "reverted") != 1 {
		t.Fatalf("audit = %v", actions)
	}
}

// TestReplicasSurviveAKilledReplica: three replicas on one PostgreSQL. A
// double click lands on A and B and applies once; a Slack redelivery lands
// on another replica and runs once; the replica that applied is killed in
// the window, and B or C reverts on time, once, with one notice.
func TestReplicasSurviveAKilledReplica(t *testing.T) {
	r := newReplicaRig(t, 3)
	card, appliedSeen := r.requestAndApprove(t, "8s", 0, 0, 1)
	if n := patches(r.sb, securityDefaults); n != 1 {
		t.Fatalf("a double click over two replicas PATCHed %d times", n)
	}
	r.wait(t, 20*time.Second, "the second click is told it was already done", ephemeralTo(slackApprover, "already"))

	// "@c2 status" delivered to A, then redelivered by Slack to C: one answer.
	mention := slacktest.AppMention("Ev0REPL1", slackChannel, slackRequester, "status")
	r.post(t, slacktest.NewEventRequest(r.procs[0].url+slackbot.PathEvents, slackSecret, time.Now(), mention))
	redelivery := slacktest.NewEventRequest(r.procs[2].url+slackbot.PathEvents, slackSecret, time.Now(), mention)
	redelivery.Header.Set("X-Slack-Retry-Num", "1")
	redelivery.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	r.post(t, redelivery)
	isStatus := func(m slacktest.Message) bool {
		return !m.Ephemeral && m.Channel == slackChannel && headerTitle(m) == "Open requests"
	}
	r.wait(t, 20*time.Second, "status answer", isStatus)

	applier := -1
	for i, p := range r.procs {
		if strings.Contains(p.logs.String(), `msg="change applied"`) {
			applier = i
		}
	}
	if applier < 0 {
		t.Fatal("no replica logged the apply")
	}
	r.procs[applier].kill(t)
	if !sandboxOpened(r.sb.State()) {
		t.Fatal("reverted before the kill; the test proves nothing")
	}
	r.waitReverted(t, card, appliedSeen, 8*time.Second, 10*time.Second)
	if strings.Contains(r.procs[applier].logs.String(), `msg="change reverted"`) {
		t.Error("the killed replica logged the revert")
	}
	time.Sleep(2 * time.Second) // let any duplicate notice show itself
	if n := r.count(isStatus); n != 1 {
		t.Errorf("%d answers to one mention delivered to two replicas", n)
	}
	r.checkOnce(t, card)
}

// TestReplicasSurvivePostgresRestart restarts PostgreSQL in the window: the
// revert still happens once, and /readyz says so while the database is away.
func TestReplicasSurvivePostgresRestart(t *testing.T) {
	// A private server, so restarting it disturbs no other test.
	cl := pgtest.StartCluster(t)
	r := newReplicaRigOn(t, 3, pgtest.DatabaseOn(t, cl.URL))
	card, appliedSeen := r.requestAndApprove(t, "12s", 1, 2, 0)

	// While the database is down: not ready, and a command is told to try again.
	cl.Stop()
	eventually(t, 10*time.Second, "/readyz fails while the database is down", func() bool {
		resp, err := http.Get(r.procs[0].url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	r.slash(t, r.procs[0], "status", "trig.replicas.down")
	r.wait(t, 20*time.Second, "a try-again reply while the database is down",
		ephemeralTo(slackRequester, "cannot reach its database right now. Try again"))
	cl.Start()
	eventually(t, 20*time.Second, "/readyz passes once the database is back", func() bool {
		resp, err := http.Get(r.procs[0].url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !sandboxOpened(r.sb.State()) {
		t.Fatal("reverted before the restart finished; the test proves nothing")
	}
	r.waitReverted(t, card, appliedSeen, 12*time.Second, 15*time.Second)
	time.Sleep(2 * time.Second)
	r.checkOnce(t, card)
}

// TestReplicasRollingRestart stops and starts each of the three replicas in
// turn during the window: the revert happens once, on time.
func TestReplicasRollingRestart(t *testing.T) {
	r := newReplicaRig(t, 3)
	card, appliedSeen := r.requestAndApprove(t, "12s", 2, 1, 2)
	for i := range r.procs {
		r.term(t, i)
		r.restart(t, i)
	}
	if !sandboxOpened(r.sb.State()) {
		t.Fatal("reverted before the rolling restart finished; the test proves nothing")
	}
	r.waitReverted(t, card, appliedSeen, 12*time.Second, 15*time.Second)
	time.Sleep(2 * time.Second)
	r.checkOnce(t, card)
}
