package teams

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/c2bot/c2bot/bot"
)

var sampleMsg = bot.Message{
	Title:    "Diagnosis for contoso",
	Sections: []bot.Section{{Title: "Security defaults", Severity: bot.SeverityBlocker, Text: "Enabled: basic auth is blocked for every user."}},
	Buttons:  []bot.Button{{Label: "Request temporary fix", Command: "fix contoso", Style: bot.StylePrimary}},
}

func TestPostAndUpdatePersonal(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL+"/_connector")

	ref, err := a.Post(bg, conv, sampleMsg)
	if err != nil {
		t.Fatal(err)
	}
	if ref.ID == "" || ref.Conv.ID != conv.ID || string(ref.Conv.Ref) != string(conv.Ref) {
		t.Fatalf("ref = %+v", ref)
	}
	if err := a.Update(bg, ref, bot.Message{Title: "Approved", Text: "applied"}); err != nil {
		t.Fatal(err)
	}
	calls := fc.recorded()
	if len(calls) != 2 {
		t.Fatalf("connector got %d calls, want 2", len(calls))
	}
	post, put := calls[0], calls[1]
	if post.Method != http.MethodPost || post.Path != "/_connector/v3/conversations/3483bc16-6859-4ecc-a925-00dc2fe7126e/activities" {
		t.Errorf("post = %s %s", post.Method, post.Path)
	}
	if post.Authorization != "" {
		t.Errorf("unauthenticated mode sent Authorization %q", post.Authorization)
	}
	checkCardActivity(t, post.Body, "Diagnosis for contoso")
	if conv := post.Body["conversation"].(map[string]any); conv["id"] != "3483bc16-6859-4ecc-a925-00dc2fe7126e" || conv["tenantId"] != "00000000-0000-0000-0000-0000000000001" {
		t.Errorf("conversation = %v", conv)
	}
	if from := post.Body["from"].(map[string]any); from["id"] != "00000000-0000-0000-0000-00000000000011" {
		t.Errorf("from = %v", from)
	}
	wantPut := "/_connector/v3/conversations/3483bc16-6859-4ecc-a925-00dc2fe7126e/activities/" + ref.ID
	if put.Method != http.MethodPut || put.Path != wantPut {
		t.Errorf("update = %s %s, want PUT %s", put.Method, put.Path, wantPut)
	}
	if put.Body["id"] != ref.ID {
		t.Errorf("update body id = %v, want %s", put.Body["id"], ref.ID)
	}
	checkCardActivity(t, put.Body, "Approved")
}

// checkCardActivity checks that body is a message activity whose only
// attachment is an Adaptive Card with the given title, buttons as
// Action.Execute with verb c2.
func checkCardActivity(t *testing.T, body map[string]any, title string) {
	t.Helper()
	if body["type"] != "message" {
		t.Errorf("type = %v", body["type"])
	}
	atts, _ := body["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments = %v", body["attachments"])
	}
	att := atts[0].(map[string]any)
	if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("contentType = %v", att["contentType"])
	}
	card := att["content"].(map[string]any)
	if card["type"] != "AdaptiveCard" || card["version"] != "1.5" {
		t.Errorf("card type/version = %v/%v", card["type"], card["version"])
	}
	first := card["body"].([]any)[0].(map[string]any)
	if first["text"] != title || first["size"] != "Large" || first["weight"] != "Bolder" {
		t.Errorf("title block = %v", first)
	}
	for _, a := range anySlice(card["actions"]) {
		act := a.(map[string]any)
		data := act["data"].(map[string]any)
		if act["type"] != "Action.Execute" || act["verb"] != "c2" || data["c2cmd"] == "" {
			t.Errorf("action = %v", act)
		}
		fb := act["fallback"].(map[string]any)
		if fb["type"] != "Action.Submit" || fb["data"].(map[string]any)["c2cmd"] != data["c2cmd"] {
			t.Errorf("fallback = %v", fb)
		}
	}
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestPostInChannelThread(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	conv := conversationFor(t, fixture(t, "teamsnet_channel_message_with_mention.json"), fc.URL)
	if conv.Thread != "1759881511856" {
		t.Fatalf("thread = %q", conv.Thread)
	}
	ref, err := a.Post(bg, conv, sampleMsg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(bg, ref, sampleMsg); err != nil {
		t.Fatal(err)
	}
	calls := fc.recorded()
	threadID := url.PathEscape("19:6848757105754c8981c67612732d9aa7@thread.tacv2;messageid=1759881511856")
	if want := "/v3/conversations/" + threadID + "/activities/1759881511856"; calls[0].Path != want {
		t.Errorf("reply path = %s\nwant %s", calls[0].Path, want)
	}
	if calls[0].Body["replyToId"] != "1759881511856" {
		t.Errorf("replyToId = %v", calls[0].Body["replyToId"])
	}
	if want := "/v3/conversations/" + threadID + "/activities/" + ref.ID; calls[1].Path != want {
		t.Errorf("update path = %s\nwant %s", calls[1].Path, want)
	}
	cd, _ := calls[0].Body["channelData"].(map[string]any)
	if tenant, _ := cd["tenant"].(map[string]any); tenant["id"] != "50612dbb-0237-4969-b378-8d42590f9c00" {
		t.Errorf("channelData = %v", calls[0].Body["channelData"])
	}

	// The same conversation, top level (a proactive notice): no thread.
	top := conv
	top.Thread = ""
	if _, err := a.Post(bg, top, sampleMsg); err != nil {
		t.Fatal(err)
	}
	calls = fc.recorded()
	if want := "/v3/conversations/" + url.PathEscape("19:6848757105754c8981c67612732d9aa7@thread.tacv2") + "/activities"; calls[2].Path != want {
		t.Errorf("top-level path = %s\nwant %s", calls[2].Path, want)
	}
}

func TestPostAfterRestartUsesStoredReference(t *testing.T) {
	fc := newFakeConnector(t)
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL+"/_connector")
	stored, err := json.Marshal(conv) // what the core persists
	if err != nil {
		t.Fatal(err)
	}
	var restored bot.Conversation
	if err := json.Unmarshal(stored, &restored); err != nil {
		t.Fatal(err)
	}
	a := newLocalAdapter(t) // a fresh process: nothing in memory
	if _, err := a.Post(bg, restored, bot.Message{Text: "Change r-1 reverted."}); err != nil {
		t.Fatal(err)
	}
	if calls := fc.recorded(); len(calls) != 1 || !strings.HasSuffix(calls[0].Path, "/v3/conversations/3483bc16-6859-4ecc-a925-00dc2fe7126e/activities") {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestConnectorErrors(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	base := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL+"/_connector")
	withID := func(id string) bot.Conversation {
		c := base
		var ref map[string]any
		json.Unmarshal(c.Ref, &ref)
		ref["conversation"].(map[string]any)["id"] = id
		c.Ref, _ = json.Marshal(ref)
		c.ID = id
		return c
	}
	tests := []struct {
		name          string
		conv          bot.Conversation
		undeliverable bool
		text          string
	}{
		{"404 ConversationNotFound", withID("gone"), true, "ConversationNotFound"},
		{"403 BotNotInConversationRoster", withID("removed"), true, "BotNotInConversationRoster"},
		{"502 outage", withID("flaky"), false, "status 502"},
		{"no reference", bot.Conversation{Platform: bot.Teams, ID: "x"}, true, "no reference"},
		{"connector unreachable", func() bot.Conversation {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close()
			return conversationFor(t, fixture(t, "playground_personal_message.json"), srv.URL)
		}(), false, "bot connector"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Post(bg, tc.conv, sampleMsg)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, bot.ErrUndeliverable); got != tc.undeliverable {
				t.Errorf("undeliverable = %v, want %v (%v)", got, tc.undeliverable, err)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
			uerr := a.Update(bg, bot.MessageRef{Conv: tc.conv, ID: "1795592486071"}, sampleMsg)
			if uerr == nil || errors.Is(uerr, bot.ErrUndeliverable) != tc.undeliverable {
				t.Errorf("update error = %v", uerr)
			}
		})
	}
}

// tokenServer is an Entra ID token endpoint for the bot's tenant.
type tokenServer struct {
	*httptest.Server
	mu     sync.Mutex
	issued int
	scopes []string
	// echo makes the token endpoint refuse and quote the raw request body.
	echo bool
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
			json.NewEncoder(w).Encode(map[string]any{
				"token_endpoint":         ts.URL + "/tenant-1/oauth2/v2.0/token",
				"authorization_endpoint": ts.URL + "/tenant-1/oauth2/v2.0/authorize",
				"issuer":                 ts.URL + "/tenant-1/v2.0",
			})
		case r.URL.Path == "/tenant-1/oauth2/v2.0/token" && ts.echo:
			raw, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": "invalid_request",
				"error_description": "AADSTS900144: could not parse " + string(raw), "error_codes": []int{900144}})
		case r.URL.Path == "/tenant-1/oauth2/v2.0/token":
			r.ParseForm()
			ts.mu.Lock()
			ts.issued++
			ts.scopes = append(ts.scopes, r.PostForm.Get("scope"))
			ts.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": "bf-token-1"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestOutboundTokenFromOwnTenant(t *testing.T) {
	ts := newTokenServer(t)
	fc := newFakeConnector(t)
	a, err := New(Config{
		AppID: testAppID, AppPassword: "not-a-real-secret", AppTenantID: "tenant-1",
		AuthorityURL: ts.URL, ListenAddr: ":3978", HTTPClient: ts.Client(), Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL)
	for i := 0; i < 3; i++ {
		if _, err := a.Post(bg, conv, sampleMsg); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range fc.recorded() {
		if c.Authorization != "Bearer bf-token-1" {
			t.Errorf("Authorization = %q", c.Authorization)
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.issued != 1 {
		t.Errorf("token endpoint called %d times for 3 posts, want 1 (cached)", ts.issued)
	}
	if len(ts.scopes) == 0 || !strings.Contains(ts.scopes[0], "https://api.botframework.com/.default") {
		t.Errorf("scopes = %v", ts.scopes)
	}
}

func TestTokenEndpointUnreachable(t *testing.T) {
	fc := newFakeConnector(t)
	dead := httptest.NewTLSServer(http.NotFoundHandler())
	deadURL, client := dead.URL, dead.Client()
	dead.Close()
	a, err := New(Config{
		AppID: testAppID, AppPassword: "not-a-real-secret", AppTenantID: "tenant-1",
		AuthorityURL: deadURL, ListenAddr: ":3978", HTTPClient: client, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL)
	_, err = a.Post(bg, conv, sampleMsg)
	if err == nil {
		t.Fatal("post without a token succeeded")
	}
	if errors.Is(err, bot.ErrUndeliverable) {
		t.Errorf("a token outage is transient, got undeliverable: %v", err)
	}
	if strings.Contains(err.Error(), "not-a-real-secret") {
		t.Errorf("error leaks the secret: %v", err)
	}
	t.Logf("error: %v", err)
	if len(fc.recorded()) != 0 {
		t.Error("connector called without a token")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no app id and no opt-in, on loopback", Config{ListenAddr: "127.0.0.1:3978", Tenants: []string{"t"}}},
		{"no app id and no opt-in", Config{ListenAddr: ":3978", Tenants: []string{"t"}}},
		{"unauthenticated on all interfaces", Config{ListenAddr: ":3978", Unauthenticated: true, Tenants: []string{"t"}}},
		{"unauthenticated on a public address", Config{ListenAddr: "10.1.2.3:3978", Unauthenticated: true, Tenants: []string{"t"}}},
		{"unauthenticated with no address", Config{Unauthenticated: true, Tenants: []string{"t"}}},
		{"unauthenticated with no tenant", Config{ListenAddr: "127.0.0.1:3978", Unauthenticated: true}},
		{"unauthenticated and an app id", Config{ListenAddr: "127.0.0.1:3978", Unauthenticated: true, AppID: testAppID, AppPassword: "p", AppTenantID: "t"}},
		{"no password", Config{AppID: testAppID, AppTenantID: "t"}},
		{"no tenant", Config{AppID: testAppID, AppPassword: "p"}},
		{"http authority", Config{AppID: testAppID, AppPassword: "p", AppTenantID: "t", AuthorityURL: "http://login.example"}},
	}
	for _, tc := range tests {
		tc.cfg.Logger = quietLogger()
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr   string
		unauth bool
		ok     bool
	}{
		{"127.0.0.1:3978", true, true},
		{"[::1]:3978", true, true},
		{"localhost:3978", true, true},
		{":3978", true, false},
		{"0.0.0.0:3978", true, false},
		{"192.168.1.5:3978", true, false},
		{"", true, false},
		{":3978", false, true},
	}
	for _, tc := range tests {
		if err := CheckListen(tc.addr, tc.unauth); (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok=%v", tc.addr, tc.unauth, err, tc.ok)
		}
	}
}
