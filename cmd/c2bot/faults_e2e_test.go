package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot/slack/slacktest"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// The fault-injection suite: the real binary, built with -tags faultinject,
// is killed at every step of apply and revert, or meets a Graph that
// throttles, fails, hangs, or an Entra token endpoint that is down. After
// each run: the tenant is at its snapshot, each setting was changed and put
// back at most once, the audit log holds one outcome, and the thread holds
// exactly one Reverted notice when the change was applied (even when the
// process is killed after Slack accepted the notice: the restarted process
// finds it in the thread before posting). C2_FAULT_REPORT=
// file writes the table of runs (BENCHMARKS.md holds one).

// faultWindow is the change window of every run.
const faultWindow = 3 * time.Second

// faultConcurrency is how many runs go at once: each is mostly waiting
// (windows, backoff, timeouts), so more than the two cores.
const faultConcurrency = 8

// Outcomes of a run.
const (
	outcomeReverted   = "reverted"        // applied, then reverted at the end of the window
	outcomeRolledBack = "rolled back"     // the apply did not finish; what it wrote was undone
	outcomeUntouched  = "nothing written" // stopped before the first write
	// a write timed out (its outcome unknown): rolled back, re-checked
	// after a backoff, whatever landed meanwhile put back, ended reverted
	outcomeRechecked = "rolled back, re-checked"
)

// faultCase is one run.
type faultCase struct {
	scenario string // a `demo --scenario` tenant
	// items is the length of the plan c2bot proposes in scenario today;
	// a reverted run checks that each item was written once each way.
	items int
	fault string // what is done, for the table
	// crash is C2_FAULTINJECT_CRASH for the first process (faultinject.go).
	crash string
	// hold is a request the sandbox holds, armed once the approval card is
	// posted; the first process is SIGKILLed while it is held.
	hold *sandbox.HoldSpec
	// releaseLate keeps the process alive: the hold is released once the
	// rollback has scheduled its re-check (a write that lands after c2bot
	// gave up on it and rolled back).
	releaseLate bool
	// afterRevert (with releaseLate): the hold is released only once the
	// re-check has ended the request reverted; the late-write watch must
	// find the write and put it back.
	afterRevert bool
	// beforeApprove arms Graph faults once the card is posted;
	// whileApplied arms them once the card says the change is applied.
	beforeApprove, whileApplied func(*sandbox.Server)
	opts                        sandbox.Options
	want                        string
	// retried: the fault must have failed at least one revert attempt.
	retried bool
	// noHistory: the Slack app has no *:history scope, so after a crash
	// between Slack accepting the Reverted notice and the outbox recording
	// it c2bot cannot look for the notice and posts it again (the
	// documented fallback): the run asserts exactly two notices.
	noHistory bool
}

// faultRow is the result of one run.
type faultRow struct {
	faultCase
	caught   string // the request the hold caught
	outcome  string
	atSnap   bool
	away     int // setting writes away from the snapshot value
	back     int // setting writes back to it
	audit    map[string]int
	notices  int
	duration time.Duration
	failed   bool // an invariant did not hold
}

var faultBuild struct {
	once sync.Once
	path string
	err  error
}

// faultBinary builds c2bot with the crash points, once; under go test
// -race with the race detector too, so the runs also hunt data races in the
// binary (runFaultCase reads its output).
func faultBinary(t *testing.T) string {
	t.Helper()
	faultBuild.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "c2bot-faultinject")
		args := []string{"build", "-tags", "faultinject", "-o", path}
		if raceTest {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			faultBuild.err = fmt.Errorf("build with -tags faultinject: %v\n%s", err, out)
		}
		faultBuild.path = path
	})
	if faultBuild.err != nil {
		t.Fatal(faultBuild.err)
	}
	return faultBuild.path
}

// anyPatch is the nth PATCH (1-based) counted from when the hold is armed:
// in an n-item plan 1…n apply and n+1…2n restore.
func anyPatch(n int, landed bool) *sandbox.HoldSpec {
	return &sandbox.HoldSpec{Method: http.MethodPatch, Skip: n - 1, Landed: landed}
}

func faultCases() []faultCase {
	// The scenarios and the length of the plan c2bot proposes in each
	// today (TestSandboxScenarios checks the plans; a reverted run here
	// checks the count): Security defaults off; one exclusion; an exclusion
	// from each of three policies.
	const sd, ca, mp = "security-defaults", "conditional-access", "mfa-policies"
	items := map[string]int{sd: 1, ca: 1, mp: 3}
	var cs []faultCase
	add := func(c faultCase) {
		c.items = items[c.scenario]
		cs = append(cs, c)
	}
	crash := func(scenario, point, want string) {
		add(faultCase{scenario: scenario, fault: "SIGKILL at " + point, crash: point, want: want})
	}
	held := func(scenario string, n int, landed bool, want string) {
		what := "not yet served (lost)"
		if landed {
			what = "served, answer held (landed)"
		}
		add(faultCase{scenario: scenario, fault: fmt.Sprintf("SIGKILL during PATCH %d, %s", n, what), hold: anyPatch(n, landed), want: want})
	}

	// steps kills the process at every step of apply and revert of the
	// scenario's plan, item by item. verifyPath is where the last item is
	// read; the GET there after skip others (since the approval card) is
	// its read-back.
	steps := func(scenario, verifyPath string, skip int) {
		n := items[scenario]
		// Apply, step by step.
		for i := 1; i <= n; i++ {
			crash(scenario, fmt.Sprintf("snapshot#%d", i), outcomeUntouched)
		}
		crash(scenario, "committed:applying", outcomeRolledBack)
		for i := 1; i <= n; i++ {
			held(scenario, i, false, outcomeRolledBack)
			held(scenario, i, true, outcomeRolledBack)
			crash(scenario, fmt.Sprintf("apply#%d", i), outcomeRolledBack)
		}
		// The read-back of the last item: the GETs before it are let through.
		add(faultCase{scenario: scenario, fault: "SIGKILL during verify (read-back GET of the last item)", want: outcomeRolledBack,
			hold: &sandbox.HoldSpec{Method: http.MethodGet, PathPrefix: verifyPath, Skip: skip}})
		crash(scenario, fmt.Sprintf("verify#%d", n), outcomeRolledBack)
		crash(scenario, "committing:applied", outcomeRolledBack)
		crash(scenario, "committed:applied", outcomeReverted)
		// Revert, step by step.
		crash(scenario, "committed:reverting", outcomeReverted)
		for i := 1; i <= n; i++ {
			held(scenario, n+i, false, outcomeReverted)
			held(scenario, n+i, true, outcomeReverted)
			crash(scenario, fmt.Sprintf("restore#%d", i), outcomeReverted)
		}
		crash(scenario, "committing:reverted", outcomeReverted)
		crash(scenario, "committed:reverted", outcomeReverted)
		crash(scenario, "notice:sending", outcomeReverted)
		// After Slack accepted the notice, before the outbox recorded it:
		// the restarted process finds the notice in the thread.
		crash(scenario, "notice:sent", outcomeReverted)
	}

	steps(sd, securityDefaults, 1)
	add(faultCase{scenario: sd, fault: "SIGKILL at notice:sent, Slack app without *:history scopes (fallback: posted again)",
		crash: "notice:sent", want: outcomeReverted, noHistory: true})
	// The scoped Conditional Access fix; an exclusion's write reads the
	// policy first, so its read-back is the third GET of the policy.
	steps(ca, "/identity/conditionalAccess/policies/"+sandbox.DefaultPolicyID, 2)
	steps(mp, "/identity/conditionalAccess/policies/"+sandbox.DeviceOrMFAPolicyID, 2)

	// Graph faults, on the three-item plan.
	const caPolicies = "/identity/conditionalAccess/policies/"
	add(faultCase{scenario: mp, fault: "429 storm, Retry-After 0.3: 3 during apply, 12 during revert", want: outcomeReverted, retried: true,
		beforeApprove: func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Status: 429, RetryAfter: "0.3", Times: 3}) },
		whileApplied:  func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Status: 429, RetryAfter: "0.3", Times: 12}) }})
	add(faultCase{scenario: mp, fault: "429 storm without Retry-After: 2 during apply, 3 during revert", want: outcomeReverted,
		beforeApprove: func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Status: 429, Times: 2}) },
		whileApplied:  func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Status: 429, Times: 3}) }})
	add(faultCase{scenario: mp, fault: "503 storm: 4 with Retry-After 0.2 during apply, 3 without during revert", want: outcomeReverted,
		beforeApprove: func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Status: 503, RetryAfter: "0.2", Times: 4}) },
		whileApplied:  func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Status: 503, Times: 3}) }})
	add(faultCase{scenario: mp, fault: "timeout: a Conditional Access PATCH lands, its answer never comes (apply)", want: outcomeRechecked,
		beforeApprove: func(sb *sandbox.Server) {
			sb.Fail(sandbox.FailRule{Method: http.MethodPatch, PathPrefix: caPolicies, Hang: true, Landed: true, Times: 1})
		}})
	add(faultCase{scenario: mp, fault: "timeout: a Conditional Access PATCH held past the client timeout lands after the rollback (apply)",
		hold: &sandbox.HoldSpec{Method: http.MethodPatch, PathPrefix: caPolicies, Late: true}, releaseLate: true,
		want: outcomeRechecked})
	add(faultCase{scenario: sd, fault: "timeout: the Security defaults PATCH held past the client timeout lands after the rollback (apply)",
		hold: &sandbox.HoldSpec{Method: http.MethodPatch, PathPrefix: securityDefaults, Late: true}, releaseLate: true,
		want: outcomeRechecked})
	add(faultCase{scenario: sd, fault: "timeout: the Security defaults PATCH held past the client timeout lands after the request ended reverted (late-write watch)",
		hold: &sandbox.HoldSpec{Method: http.MethodPatch, PathPrefix: securityDefaults, Late: true}, releaseLate: true, afterRevert: true,
		want: outcomeRechecked})
	add(faultCase{scenario: mp, fault: "timeout: 2 restoring PATCHes never answered (revert)", want: outcomeReverted, retried: true,
		whileApplied: func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Method: http.MethodPatch, Hang: true, Times: 2}) }})
	add(faultCase{scenario: mp, fault: "timeout: a restoring PATCH lands, its answer never comes (revert)", want: outcomeReverted, retried: true,
		whileApplied: func(sb *sandbox.Server) {
			sb.Fail(sandbox.FailRule{Method: http.MethodPatch, Hang: true, Landed: true, Times: 1})
		}})
	add(faultCase{scenario: mp, fault: "SIGKILL during the re-sent restoring PATCH after a 429 (Retry-After 0.2), landed",
		hold: anyPatch(items[mp]+2, true), want: outcomeReverted,
		whileApplied: func(sb *sandbox.Server) {
			sb.Fail(sandbox.FailRule{Method: http.MethodPatch, Status: 429, RetryAfter: "0.2", Times: 1})
		}})
	add(faultCase{scenario: mp, fault: "503 storm past the retry budget during the revert, SIGKILL once the failed attempt is committed",
		crash: "committed:revert_failed", want: outcomeReverted, retried: true,
		whileApplied: func(sb *sandbox.Server) { sb.Fail(sandbox.FailRule{Status: 503, RetryAfter: "0.1", Times: 15}) }})
	add(faultCase{scenario: mp, fault: "token endpoint down (503) for 4 requests during the revert", want: outcomeReverted, retried: true,
		opts:         sandbox.Options{TokenLifetime: time.Minute},
		whileApplied: func(sb *sandbox.Server) { sb.FailTokens(sandbox.FailRule{Times: 4}) }})
	// A restarted process has no cached token: the outage meets its revert.
	add(faultCase{scenario: mp, fault: "SIGKILL at committed:applied, token endpoint down (503) for 3 requests when the restarted process reverts",
		crash: "committed:applied", want: outcomeReverted, retried: true,
		beforeApprove: func(sb *sandbox.Server) { sb.FailTokens(sandbox.FailRule{Times: 3}) }})
	add(faultCase{scenario: mp, fault: "token endpoint hangs for 2 requests during the revert", want: outcomeReverted, retried: true,
		opts:         sandbox.Options{TokenLifetime: time.Minute},
		whileApplied: func(sb *sandbox.Server) { sb.FailTokens(sandbox.FailRule{Hang: true, Times: 2}) }})
	add(faultCase{scenario: mp, fault: "Conditional Access throttle on (1 request/s, 429 without Retry-After)", want: outcomeReverted,
		beforeApprove: func(sb *sandbox.Server) { sb.SetCAThrottle(true) }})
	return cs
}

func TestFaultInjection(t *testing.T) {
	bin := faultBinary(t)
	cases := faultCases()
	rows := make([]faultRow, len(cases))
	start := time.Now()
	sem := make(chan struct{}, faultConcurrency)
	var wg sync.WaitGroup
	for i, fc := range cases {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(fmt.Sprintf("%02d %s %s", i+1, fc.scenario, fc.fault), func(t *testing.T) {
				rows[i] = faultRow{faultCase: fc, outcome: "(unfinished)"}
				defer func() { rows[i].failed = t.Failed() }()
				rows[i] = runFaultCase(t, bin, fc)
			})
		})
	}
	wg.Wait()
	t.Logf("%d cases in %s", len(cases), time.Since(start).Round(time.Second))
	if path := os.Getenv("C2_FAULT_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(faultReport(rows, time.Since(start))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runFaultCase runs one case and checks the invariants.
func runFaultCase(t *testing.T, bin string, fc faultCase) faultRow {
	began := time.Now()
	row := faultRow{faultCase: fc, outcome: "(unfinished)"}
	sb, env := sandboxScenarioEnvWith(t, fc.scenario, fc.opts)
	r := slackRigOn(t, sb, env, false)
	if fc.noHistory {
		r.fake.SetScopes("commands", "chat:write", "app_mentions:read")
	}
	env["C2_GRAPH_TIMEOUT"] = "2s"
	first := map[string]string{}
	for k, v := range env {
		first[k] = v
	}
	if fc.crash != "" {
		first["C2_FAULTINJECT_CRASH"] = fc.crash
	}

	p := startBinary(t, bin, first, "serve")
	procs := []*proc{p}
	r.slash(t, p, fmt.Sprintf("fix --for %s", faultWindow), "trig.fault.1")
	card := r.wait(t, 30*time.Second, "approval card", isCard("Approval needed:"))
	var held sandbox.Held
	armed := len(sb.Requests())
	if fc.hold != nil {
		held = sb.HoldRequest(*fc.hold)
		defer held.Release()
	}
	if fc.beforeApprove != nil {
		fc.beforeApprove(sb)
	}
	r.click(t, p, clickPayload(t, card, "Approve", slackApprover, "1700000600.000600"))
	if fc.whileApplied != nil {
		r.wait(t, 60*time.Second, "card updated to applied", cardNow(card, "Applied:"))
		fc.whileApplied(sb)
	}

	switch {
	case fc.crash != "":
		select {
		case <-p.done:
			p.done <- nil
		case <-time.After(90 * time.Second):
			t.Fatalf("the process never reached %s", fc.crash)
		}
		if !strings.Contains(p.logs.String(), "faultinject: crash at "+fc.crash) {
			t.Fatalf("the process ended without crashing at %s", fc.crash)
		}
	case fc.hold != nil && fc.releaseLate:
		select {
		case <-held.Arrived():
		case <-time.After(90 * time.Second):
			t.Fatal("the held request never came")
		}
		row.caught = heldRequest(sb.Requests()[armed:], *fc.hold)
		// The store is the running process's; the card says it instead.
		r.wait(t, 60*time.Second, "card says the rollback re-checks", cardNow(card, "Rolled back, re-checking:"))
		if fc.afterRevert {
			r.wait(t, 60*time.Second, "card says reverted (the re-check found nothing)", cardNow(card, "Reverted:"))
		}
		changes := len(sb.History())
		held.Release()
		eventually(t, 20*time.Second, "the late write landed", func() bool { return len(sb.History()) > changes })
		if fc.afterRevert {
			r.wait(t, 60*time.Second, "the late write put back and announced", func(m slacktest.Message) bool {
				return !m.Ephemeral && m.ThreadTS == card.TS && strings.HasPrefix(headerTitle(m), "Late write undone: sandbox (r-1)")
			})
		}
	case fc.hold != nil:
		select {
		case <-held.Arrived():
		case <-time.After(90 * time.Second):
			t.Fatal("the held request never came")
		}
		row.caught = heldRequest(sb.Requests()[armed:], *fc.hold)
		// Nothing is PATCHed before the approval.
		if n := patches(sb, ""); fc.hold.Method == http.MethodGet && n != fc.items {
			t.Fatalf("the read-back hold caught a GET with %d of the plan's %d PATCHes made", n, fc.items)
		}
		p.kill(t)
		select {
		case <-held.Gone():
		case <-time.After(20 * time.Second):
			t.Fatal("the sandbox did not see the killed process go")
		}
		held.Release()
	}
	if fc.crash != "" || fc.hold != nil && !fc.releaseLate {
		p = startBinary(t, bin, env, "serve")
		procs = append(procs, p)
	}

	// The end: the card in a final state, and for an applied change the
	// notice in its thread.
	final := r.wait(t, 120*time.Second, "card in a final state", func(m slacktest.Message) bool {
		return cardNow(card, "Reverted:")(m) || cardNow(card, "Failed:")(m)
	})
	if strings.HasPrefix(headerTitle(final), "Reverted:") {
		r.wait(t, 60*time.Second, "Reverted notice in the thread", revertNotice(card))
	}
	r.settle(t)
	p.kill(t)
	for _, q := range procs {
		if strings.Contains(q.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in c2bot:\n%s", q.logs.String())
		}
	}

	if n := sb.FailuresLeft(); n != 0 {
		t.Errorf("%d of the faults armed were never met; the run proves less than it says", n)
	}
	row.duration = time.Since(began)
	row.notices = r.count(revertNotice(card))
	row.atSnap, row.away, row.back = settingWrites(sb)
	row.audit = auditCounts(t, env["C2_DB"], "r-1")
	row.outcome = outcomeOf(row.audit, row.away)
	checkFaultRow(t, row, final, env["C2_DB"])
	return row
}

// settle waits until neither Slack nor the sandbox has been called for a
// second: whatever the bot still had to say is said.
func (r *slackRig) settle(t *testing.T) {
	t.Helper()
	last, lastGraph := -1, -1
	stable := time.Time{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		n, g := len(r.fake.Calls("")), len(r.sb.Requests())
		if n != last || g != lastGraph {
			last, lastGraph, stable = n, g, time.Now()
		} else if time.Since(stable) > time.Second {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the bot never went quiet")
}

// heldRequest names the request a hold caught among those since it was armed.
func heldRequest(reqs []sandbox.Recorded, h sandbox.HoldSpec) string {
	n := 0
	for _, q := range reqs {
		if (h.Method == "" || q.Method == h.Method) && strings.HasPrefix(q.Path, h.PathPrefix) {
			if n == h.Skip {
				return q.Method + " " + q.Path
			}
			n++
		}
	}
	return "?"
}

// settingsOf is every setting a plan can change, by name.
func settingsOf(st sandbox.State) map[string]string {
	m := map[string]string{
		"security defaults":        fmt.Sprint(st.SecurityDefaults),
		"SharePoint legacy auth":   fmt.Sprint(st.LegacyAuth),
		"SharePoint invited match": fmt.Sprint(st.InvitedMatch),
	}
	for _, p := range st.Policies {
		m["policy "+p.ID+" state"] = p.State
		m["policy "+p.ID+" excludes the tool"] = fmt.Sprint(slices.Contains(p.ExcludeUsers, sandbox.DefaultToolAccountID))
	}
	return m
}

// settingWrites reads the sandbox's history: whether the tenant is at its
// snapshot, and how many setting changes went away from it and back.
func settingWrites(sb *sandbox.Server) (atSnapshot bool, away, back int) {
	snap := settingsOf(sb.Initial())
	prev := snap
	for _, c := range sb.History() {
		cur := settingsOf(c.State)
		for k, v := range cur {
			if v == prev[k] {
				continue
			}
			if v == snap[k] {
				back++
			} else {
				away++
			}
		}
		prev = cur
	}
	final := settingsOf(sb.State())
	atSnapshot = len(final) == len(snap)
	for k, v := range final {
		atSnapshot = atSnapshot && snap[k] == v
	}
	return atSnapshot, away, back
}

func auditCounts(t *testing.T, db, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, a := range auditActions(t, db, id) {
		out[a]++
	}
	return out
}

func outcomeOf(audit map[string]int, away int) string {
	switch {
	case audit["rollback_recheck"] > 0 && audit["applied"] == 0 && audit["reverted"] > 0:
		return outcomeRechecked
	case audit["reverted"] > 0:
		return outcomeReverted
	case audit["failed"] > 0 && away > 0:
		return outcomeRolledBack
	case audit["failed"] > 0 && audit["applying"] > 0:
		return outcomeRolledBack
	case audit["failed"] > 0:
		return outcomeUntouched
	}
	return "(unfinished)"
}

// checkFaultRow checks the invariants of one run.
func checkFaultRow(t *testing.T, row faultRow, final slacktest.Message, db string) {
	t.Helper()
	if !row.atSnap {
		t.Errorf("the tenant is not at its snapshot")
	}
	// Each setting went away at most once and came back: one apply, one revert.
	if row.back != row.away {
		t.Errorf("%d writes away from the snapshot, %d back", row.away, row.back)
	}
	if row.outcome != row.want {
		t.Errorf("outcome %q, want %q", row.outcome, row.want)
	}
	a := row.audit
	switch row.want {
	case outcomeRechecked:
		if a["applied"] != 0 || a["rollback_recheck"] != 1 || a["reverted"] != 1 || a["failed"] != 0 {
			t.Errorf("audit %v: want one rollback_recheck and one reverted, nothing applied or failed", a)
		}
		if want := map[bool]int{true: 1}[row.afterRevert]; a["late_write_undone"] != want {
			t.Errorf("audit %v: want %d late_write_undone", a, want)
		}
		if row.away == 0 {
			t.Errorf("no write landed; the run proves nothing")
		}
		if row.notices != 1 {
			t.Errorf("%d Reverted notices in the thread; want exactly one", row.notices)
		}
	case outcomeReverted:
		if a["applied"] != 1 || a["reverted"] != 1 || a["failed"] != 0 {
			t.Errorf("audit %v: want one applied and one reverted", a)
		}
		if row.away != row.items {
			t.Errorf("%d setting writes took effect; want the plan's %d, once each", row.away, row.items)
		}
		if row.noHistory {
			// Without a history scope c2bot cannot look: posted again.
			if row.notices != 2 {
				t.Errorf("%d Reverted notices in the thread; want two (an app that may not read the thread posts an interrupted notice again)", row.notices)
			}
		} else if row.notices != 1 {
			t.Errorf("%d Reverted notices in the thread; want exactly one", row.notices)
		}
	default:
		if a["applied"] != 0 || a["reverted"] != 0 || a["failed"] != 1 {
			t.Errorf("audit %v: want one failed, nothing applied", a)
		}
		if row.notices != 0 {
			t.Errorf("%d Reverted notices for a change that was never applied", row.notices)
		}
		if row.want == outcomeUntouched && row.away != 0 {
			t.Errorf("%d setting writes before the first write", row.away)
		}
	}
	if row.retried && a["revert_failed"] == 0 {
		t.Errorf("audit %v: the fault never failed a revert attempt; the run proves nothing", a)
	}
	if !strings.HasPrefix(headerTitle(final), map[bool]string{true: "Reverted:", false: "Failed:"}[row.want == outcomeReverted || row.want == outcomeRechecked]) {
		t.Errorf("card ends as %q", headerTitle(final))
	}
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if at, ok, err := st.OutboxNext(context.Background()); err != nil || ok {
		t.Errorf("notifications still queued (next at %s, %v)", at, err)
	}
	if row.want == outcomeRechecked {
		// A write of the apply timed out: once reverted, the tenant is
		// checked again for a while (the late-write watch), and that is
		// all that may be scheduled.
		due, err := st.Due(context.Background(), time.Now().Add(2*time.Hour))
		if err != nil || len(due) != 1 || due[0].State != store.Reverted {
			t.Errorf("scheduled after a re-checked rollback: %d requests (%v); want the reverted request's late-write watch only", len(due), err)
		}
		return
	}
	if due, ok, err := st.NextDue(context.Background()); err != nil || ok {
		t.Errorf("something is still scheduled (at %s, %v)", due, err)
	}
}

// faultReport is the table of runs, in Markdown.
func faultReport(all []faultRow, total time.Duration) string {
	var rows []faultRow
	for _, r := range all {
		if r.fault != "" { // run, not filtered out by -run
			rows = append(rows, r)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d runs, %s wall time, %d at a time (`C2_FAULT_REPORT=… go test -race -run TestFaultInjection ./cmd/c2bot`).\n\n",
		len(rows), total.Round(time.Second), faultConcurrency)
	b.WriteString("| # | scenario (plan items) | fault | outcome | tenant at snapshot | setting writes away / back | audit (applied, reverted, failed, revert_failed, rollback_recheck, late_write_undone) | Reverted notices | invariants | s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range rows {
		fault := r.fault
		if r.caught != "" {
			fault += " — " + r.caught
		}
		outcome := r.outcome
		if r.outcome != r.want {
			outcome = fmt.Sprintf("**%s (want %s)**", r.outcome, r.want)
		}
		snap := "yes"
		if !r.atSnap {
			snap = "**no**"
		}
		verdict := "hold"
		if r.failed {
			verdict = "**FAIL**"
		}
		notices := fmt.Sprint(r.notices)
		if r.noHistory {
			notices += " (no history scope: posted again, as documented)"
		}
		fmt.Fprintf(&b, "| %d | %s (%d) | %s | %s | %s | %d / %d | %d, %d, %d, %d, %d, %d | %s | %s | %.1f |\n", i+1, r.scenario, r.items, fault, outcome, snap,
			r.away, r.back, r.audit["applied"], r.audit["reverted"], r.audit["failed"], r.audit["revert_failed"], r.audit["rollback_recheck"], r.audit["late_write_undone"], notices, verdict, r.duration.Seconds())
	}
	return b.String()
}

func TestProductionBuildHasNoCrashPoints(t *testing.T) {
	raw, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "C2_FAULTINJECT_CRASH") {
		t.Fatal("the binary built without -tags faultinject reads C2_FAULTINJECT_CRASH")
	}
	fi, err := os.ReadFile(faultBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fi), "C2_FAULTINJECT_CRASH") {
		t.Fatal("the check above proves nothing: the faultinject build does not contain the name either")
	}
	// An unknown point stops a faultinject build at start-up.
	_, env := sandboxEnv(t)
	env["C2_FAULTINJECT_CRASH"] = "nowhere"
	cmd := exec.Command(faultBinary(t), "serve")
	cmd.Env = childEnv(env)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown crash point") {
		t.Fatalf("unknown crash point: %v %s", err, out)
	}
}

func TestGraphTimeoutSetting(t *testing.T) {
	cfg, err := loadWith(t, nil, nil, "")
	if err != nil || cfg.GraphTimeout != 60*time.Second {
		t.Fatalf("default %s (%v)", cfg.GraphTimeout, err)
	}
	cfg, err = loadWith(t, []string{"--graph-timeout", "5s"}, map[string]string{"C2_GRAPH_TIMEOUT": "7s"}, "graph_timeout: 9s\n")
	if err != nil || cfg.GraphTimeout != 5*time.Second {
		t.Fatalf("flag: %s (%v)", cfg.GraphTimeout, err)
	}
	cfg, err = loadWith(t, nil, map[string]string{"C2_GRAPH_TIMEOUT": "7s"}, "graph_timeout: 9s\n")
	if err != nil || cfg.GraphTimeout != 7*time.Second {
		t.Fatalf("env: %s (%v)", cfg.GraphTimeout, err)
	}
	if _, err := loadWith(t, nil, map[string]string{"C2_GRAPH_TIMEOUT": "soon"}, ""); err == nil {
		t.Fatal("a bad timeout was accepted")
	}
	hc, err := httpClient("", 3*time.Second)
	if err != nil || hc.Timeout != 3*time.Second {
		t.Fatalf("client timeout %v (%v)", hc.Timeout, err)
	}
}
