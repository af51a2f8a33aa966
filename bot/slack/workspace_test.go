package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot/slack/slacktest"
)

// signedPost is a request signed with the test adapter's secret.
func signedPost(t *testing.T, path, ctype, body string, now time.Time) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	slacktest.Sign(req, "test-signing-secret", []byte(body), now)
	return req
}

func slashForm(team, enterprise string) string {
	f := url.Values{"team_id": {team}, "channel_id": {"C0TENANT"}, "user_id": {"U0MALLORY"}, "user_name": {"mallory"},
		"command": {"/c2"}, "text": {"fix --for 1h"}, "trigger_id": {"t." + team + enterprise}}
	if enterprise != "" {
		f.Set("enterprise_id", enterprise)
	}
	return f.Encode()
}

// TestForeignWorkspacesRefused: one signing secret serves every install of
// an app, so a signed request may come from any workspace the app is in. A
// request from a workspace c2bot does not serve — another workspace, another
// Enterprise Grid organisation, a Slack Connect guest — is told why and
// changes nothing.
func TestForeignWorkspacesRefused(t *testing.T) {
	now := time.Now()
	a, srv, _ := newTestAdapter(t, now, func(c *Config) { c.TeamIDs = nil })
	rec := newRecorder()
	a.Attach(rec)
	h := a.Handler()

	// Before auth.test nothing is served.
	got := serve(h, signedPost(t, PathCommands, "application/x-www-form-urlencoded", slashForm(slacktest.TeamID, ""), now))
	if !strings.Contains(got.Body.String(), "does not know its Slack workspace") {
		t.Fatalf("before auth.test: %s", got.Body)
	}
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}

	slash := []struct{ name, team, enterprise string }{
		{"another workspace", "T0OTHER", ""},
		{"another workspace of another organisation", "T0OTHER", "E0OTHER"},
		{"no workspace", "", ""},
	}
	for _, tc := range slash {
		got := serve(h, signedPost(t, PathCommands, "application/x-www-form-urlencoded", slashForm(tc.team, tc.enterprise), now))
		var ack map[string]string
		if err := json.Unmarshal(got.Body.Bytes(), &ack); err != nil || got.Code != http.StatusOK || ack["response_type"] != "ephemeral" {
			t.Fatalf("%s: %d %s", tc.name, got.Code, got.Body)
		}
		if !strings.Contains(ack["text"], "Nothing was done") && !strings.Contains(ack["text"], "nothing was done") {
			t.Fatalf("%s: ack %q does not say the command was refused", tc.name, ack["text"])
		}
	}

	// A click in a Slack Connect channel by someone of another organisation.
	click := slacktest.ClickPayload(slacktest.Message{Channel: "C0TENANT", TS: "1700000000.000200"},
		slacktest.Button{Label: "Approve", Value: "approve r-1", ActionID: "a", BlockID: "b"}, "U0GUEST", "guest", "1700000001.0001")
	click["user"].(map[string]any)["team_id"] = "T0EXTERNAL"
	raw, _ := json.Marshal(click)
	if got := serve(h, signedPost(t, PathInteractions, "application/x-www-form-urlencoded", url.Values{"payload": {string(raw)}}.Encode(), now)); got.Code != http.StatusOK {
		t.Fatalf("foreign click: %d", got.Code)
	}
	// A click made in another workspace.
	click = slacktest.ClickPayload(slacktest.Message{Channel: "C0TENANT", TS: "1700000000.000200"},
		slacktest.Button{Label: "Approve", Value: "approve r-1", ActionID: "a", BlockID: "b"}, "U0OTHER", "other", "1700000001.0002")
	click["team"] = map[string]any{"id": "T0OTHER"}
	click["user"].(map[string]any)["team_id"] = "T0OTHER"
	raw, _ = json.Marshal(click)
	serve(h, signedPost(t, PathInteractions, "application/x-www-form-urlencoded", url.Values{"payload": {string(raw)}}.Encode(), now))

	// Mentions: from another workspace; by a Slack Connect guest; in a
	// shared channel without the person's workspace.
	events := []map[string]any{}
	ev := slacktest.AppMention("Ev1", "C0TENANT", "U0OTHER", "fix")
	ev["team_id"] = "T0OTHER"
	events = append(events, ev)
	ev = slacktest.AppMention("Ev2", "C0TENANT", "U0GUEST", "fix")
	ev["is_ext_shared_channel"] = true
	ev["event"].(map[string]any)["user_team"] = "T0EXTERNAL"
	events = append(events, ev)
	ev = slacktest.AppMention("Ev3", "C0TENANT", "U0GUEST", "fix")
	ev["is_ext_shared_channel"] = true
	events = append(events, ev)
	for _, ev := range events {
		raw, _ := json.Marshal(ev)
		if got := serve(h, signedPost(t, PathEvents, "application/json", string(raw), now)); got.Code != http.StatusOK {
			t.Fatalf("foreign event: %d", got.Code)
		}
	}
	a.Close() // wait for the ephemeral notices
	if n := len(rec.commands()); n != 0 {
		t.Fatalf("refused requests submitted %d commands: %+v", n, rec.commands())
	}
	notices := srv.Calls("chat.postEphemeral")
	if len(notices) != 5 {
		t.Fatalf("%d ephemeral notices for 5 refused clicks and mentions, want 5", len(notices))
	}
	for _, n := range notices {
		if !strings.Contains(n.Form.Get("text"), "othing was done") {
			t.Errorf("notice %q does not say nothing was done", n.Form.Get("text"))
		}
	}

	// The bot's own workspace, and one of its own people in a shared
	// channel, are served.
	if got := serve(h, signedPost(t, PathCommands, "application/x-www-form-urlencoded", slashForm(slacktest.TeamID, ""), now)); !strings.Contains(got.Body.String(), "Working on") {
		t.Fatalf("own workspace: %s", got.Body)
	}
	ev = slacktest.AppMention("Ev4", "C0TENANT", "U0ALICE", "status")
	ev["is_ext_shared_channel"] = true
	ev["event"].(map[string]any)["user_team"] = slacktest.TeamID
	raw, _ = json.Marshal(ev)
	serve(h, signedPost(t, PathEvents, "application/json", string(raw), now))
	if n := len(rec.commands()); n != 2 {
		t.Fatalf("own workspace: %d commands, want 2", n)
	}
}

// TestWorkspaceRules: what auth.test and C2_SLACK_TEAM_IDS allow.
func TestWorkspaceRules(t *testing.T) {
	if _, err := newWorkspaces([]string{"C0CHANNEL"}); err == nil {
		t.Fatal("a channel id accepted as a workspace")
	}
	tests := []struct {
		name              string
		ids               []string
		authTeam, authEnt string
		o                 origin
		ok                bool
	}{
		{"own workspace", nil, "T1", "", origin{team: "T1"}, true},
		{"other workspace", nil, "T1", "", origin{team: "T2"}, false},
		{"workspace token in an organisation does not open the organisation", nil, "T1", "E1", origin{team: "T2", enterprise: "E1"}, false},
		{"organisation-wide token opens its organisation", nil, "", "E1", origin{team: "T2", enterprise: "E1"}, true},
		{"organisation-wide token, another organisation", nil, "", "E1", origin{team: "T2", enterprise: "E2"}, false},
		{"listed organisation", []string{"E1"}, "T1", "", origin{team: "T9", enterprise: "E1"}, true},
		{"listed workspace", []string{"T2"}, "T1", "", origin{team: "T2"}, true},
		{"Slack Connect guest", nil, "T1", "", origin{team: "T1", userTeam: "T7"}, false},
		{"listed partner workspace", []string{"T7"}, "T1", "", origin{team: "T1", userTeam: "T7"}, true},
		{"Slack Connect guest inside an allowed organisation", []string{"E1"}, "", "", origin{team: "T2", enterprise: "E1", userTeam: "T7"}, false},
		{"shared channel, unknown person's workspace", nil, "T1", "", origin{team: "T1", extShared: true}, false},
		{"shared channel, own person", nil, "T1", "", origin{team: "T1", userTeam: "T1", extShared: true}, true},
	}
	for _, tc := range tests {
		w, err := newWorkspaces(tc.ids)
		if err != nil {
			t.Fatal(err)
		}
		w.learn(tc.authTeam, tc.authEnt, false)
		if why := w.refusal(tc.o); (why == "") != tc.ok {
			t.Errorf("%s: refusal %q, want ok=%v", tc.name, why, tc.ok)
		}
	}
}

// TestSocketModeForeignWorkspaceRefused: Socket Mode envelopes carry the
// same payloads and get the same check.
func TestSocketModeForeignWorkspaceRefused(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), func(c *Config) { c.AppToken = slacktest.AppToken })
	rec := newRecorder()
	a.Attach(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.RunSocketMode(runCtx) }()
	defer func() { stop(); <-done }()
	id, err := srv.SendEnvelope(ctx, slacktest.EnvelopeSlashCommand, map[string]string{
		"channel_id": "C1", "user_id": "U1", "command": "/c2", "text": "fix", "trigger_id": "t.foreign", "team_id": "T0OTHER",
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(ctx, id)
	if err != nil || !strings.Contains(string(ack), "workspace T0OTHER") {
		t.Fatalf("ack %s %v", ack, err)
	}
	if n := len(rec.commands()); n != 0 {
		t.Fatalf("%d commands submitted", n)
	}
}

// TestOrganisationWideInstall: auth.test's is_enterprise_install opens the
// token's organisation even when auth.test names a workspace too.
func TestOrganisationWideInstall(t *testing.T) {
	w, _ := newWorkspaces(nil)
	w.learn("T1", "E1", true)
	if why := w.refusal(origin{team: "T2", enterprise: "E1"}); why != "" {
		t.Fatalf("a workspace of the organisation refused: %s", why)
	}
	if why := w.refusal(origin{team: "T3", enterprise: "E2"}); why == "" {
		t.Fatal("another organisation served")
	}
}
