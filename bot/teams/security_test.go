package teams

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/bot"
)

// localRequest is a request to /api/messages as the Agents Playground
// sends it (playground_personal_message.json's captured headers): from
// loopback, Host 127.0.0.1, Content-Type application/json, no Origin.
func localRequest(body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
	req.RemoteAddr = "127.0.0.1:50123"
	req.Host = "127.0.0.1:3978"
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestUnauthenticatedRefusesBrowsersAndForeignReplies is issue 8 item 1:
// a web page in the operator's browser could post a text/plain activity to
// a loopback /api/messages with a chosen aadObjectId and serviceUrl. Every
// such request is refused, nothing is dispatched and nothing is sent.
func TestUnauthenticatedRefusesBrowsersAndForeignReplies(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	rec := &recorder{}
	a.Attach(rec)
	msg := withFields(t, fixture(t, "playground_personal_message.json"), map[string]any{"text": "c2 status", "serviceUrl": fc.URL})

	tests := []struct {
		name   string
		edit   func(r *http.Request)
		body   []byte
		status int
	}{
		{"text/plain body (a cross-site simple POST)", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain;charset=UTF-8") }, msg, http.StatusUnsupportedMediaType},
		{"form body", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, msg, http.StatusUnsupportedMediaType},
		{"no content type", func(r *http.Request) { r.Header.Del("Content-Type") }, msg, http.StatusUnsupportedMediaType},
		{"cross-site Origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, msg, http.StatusForbidden},
		{"same-site Origin of another port", func(r *http.Request) { r.Header.Set("Origin", "http://localhost:8080") }, msg, http.StatusForbidden},
		{"null Origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, msg, http.StatusForbidden},
		{"Sec-Fetch-Site cross-site", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, msg, http.StatusForbidden},
		{"Sec-Fetch-Site same-site", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") }, msg, http.StatusForbidden},
		{"DNS-rebound Host", func(r *http.Request) { r.Host = "attacker.example:3978" }, msg, http.StatusForbidden},
		{"remote client", func(r *http.Request) { r.RemoteAddr = "10.0.0.7:40000" }, msg, http.StatusUnauthorized},
		{"serviceUrl elsewhere", nil, withFields(t, msg, map[string]any{"serviceUrl": "https://attacker.example/_connector"}), http.StatusForbidden},
		{"serviceUrl on a private address", nil, withFields(t, msg, map[string]any{"serviceUrl": "http://10.0.0.8:56150/_connector"}), http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := localRequest(tc.body)
			if tc.edit != nil {
				tc.edit(req)
			}
			w := httptest.NewRecorder()
			a.Handler().ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.status)
			}
		})
	}
	if n := len(rec.commands()); n != 0 {
		t.Fatalf("refused requests dispatched %d commands", n)
	}
	if n := len(fc.recorded()); n != 0 {
		t.Fatalf("refused requests sent %d connector calls", n)
	}

	// The playground's own request still works, with or without a charset
	// and with Sec-Fetch-Site "none" (a user-initiated navigation, not a page).
	for _, ctype := range []string{"application/json", "application/json; charset=utf-8"} {
		req := localRequest(msg)
		req.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", ctype, w.Code)
		}
	}
	if n := len(rec.commands()); n != 2 {
		t.Fatalf("playground requests dispatched %d commands, want 2", n)
	}
}

// TestUnauthenticatedSendsOnlyToLoopback: a conversation reference that
// names another host (stored earlier, or forged) gets nothing.
func TestUnauthenticatedSendsOnlyToLoopback(t *testing.T) {
	a := newLocalAdapter(t)
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), "https://attacker.example/_connector")
	_, err := a.Post(bg, conv, bot.Message{Title: "Approve?"})
	if !errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("post to a foreign serviceUrl: %v, want undeliverable", err)
	}
	if err := a.Update(bg, bot.MessageRef{Conv: conv, ID: "1"}, bot.Message{Title: "x"}); !errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("update to a foreign serviceUrl: %v, want undeliverable", err)
	}
}

// TestChannelAndTenantRefused is issue 8 item 3: only channelId msteams,
// and only the allowed tenants, in channelData.tenant.id and
// conversation.tenantId alike.
func TestChannelAndTenantRefused(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	rec := &recorder{}
	a.Attach(rec)
	msg := withFields(t, fixture(t, "playground_personal_message.json"), map[string]any{"text": "c2 status", "serviceUrl": fc.URL})
	conv := map[string]any{"conversationType": "personal", "id": "3483bc16-6859-4ecc-a925-00dc2fe7126e", "tenantId": playgroundTenant}
	otherTenant := "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name string
		body []byte
	}{
		{"webchat channel", withFields(t, msg, map[string]any{"channelId": "webchat"})},
		{"directline channel", withFields(t, msg, map[string]any{"channelId": "directline"})},
		{"emulator channel", withFields(t, msg, map[string]any{"channelId": "emulator"})},
		{"no channel", withFields(t, msg, map[string]any{"channelId": ""})},
		{"another tenant", withFields(t, msg, map[string]any{
			"channelData":  map[string]any{"tenant": map[string]any{"id": otherTenant}},
			"conversation": map[string]any{"conversationType": "personal", "id": "c", "tenantId": otherTenant},
		})},
		{"channelData names another tenant", withFields(t, msg, map[string]any{"channelData": map[string]any{"tenant": map[string]any{"id": otherTenant}}, "conversation": conv})},
		{"conversation names another tenant", withFields(t, msg, map[string]any{
			"conversation": map[string]any{"conversationType": "personal", "id": "c", "tenantId": otherTenant},
		})},
		{"no tenant at all", withFields(t, msg, map[string]any{
			"channelData":  map[string]any{},
			"conversation": map[string]any{"conversationType": "personal", "id": "c"},
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := serve(t, a, tc.body); r.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", r.Code)
			}
		})
	}
	if n := len(rec.commands()); n != 0 {
		t.Fatalf("refused activities dispatched %d commands", n)
	}
	if n := len(fc.recorded()); n != 0 {
		t.Fatalf("refused activities sent %d connector calls", n)
	}
	// The tenant id is compared without regard to case.
	upper := withFields(t, msg, map[string]any{"channelData": map[string]any{"tenant": map[string]any{"id": strings.ToUpper(playgroundTenant)}}})
	if r := serve(t, a, upper); r.Code != http.StatusOK {
		t.Fatalf("allowed tenant in upper case: status %d", r.Code)
	}
}

// TestNoAADObjectIDRunsNothing is issue 8 item 3: the user is the Entra
// object id, never from.id; without one the sender is told why and nothing
// is dispatched (no request, no approval).
func TestNoAADObjectIDRunsNothing(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	rec := &recorder{}
	a.Attach(rec)
	from := map[string]any{"id": "00000000-0000-0000-0000-0000000000021", "name": "Mallory"}

	typed := withFields(t, fixture(t, "playground_personal_message.json"), map[string]any{"text": "c2 fix", "serviceUrl": fc.URL, "from": from})
	if r := serve(t, a, typed); r.Code != http.StatusOK {
		t.Fatalf("typed: status %d", r.Code)
	}
	calls := fc.recorded()
	if len(calls) != 1 || !strings.Contains(mustJSON(t, calls[0].Body), "aadObjectId") {
		t.Fatalf("typed: want one reply explaining the missing aadObjectId, got %+v", calls)
	}

	click := withFields(t, executeActivity(t, fc.URL, "approve r-1"), map[string]any{"from": from})
	r := serve(t, a, click)
	res := decodeInvoke(t, r)
	if v, _ := res["value"].(string); !strings.Contains(v, "aadObjectId") {
		t.Fatalf("click: invoke answer %v, want the missing-aadObjectId explanation", res)
	}
	submit := withFields(t, fixture(t, "playground_action_submit_message.json"), map[string]any{"serviceUrl": fc.URL, "from": from})
	if r := serve(t, a, submit); r.Code != http.StatusOK {
		t.Fatalf("submit: status %d", r.Code)
	}
	if n := len(rec.commands()); n != 0 {
		t.Fatalf("activities without aadObjectId dispatched %d commands: %+v", n, rec.commands())
	}
}

// TestInboundKeyEndorsements: a valid token signed by a key that is not
// endorsed for msteams is refused with 403, as the Bot Framework asks.
func TestInboundKeyEndorsements(t *testing.T) {
	kA, _, _ := testKeys(t)
	for _, tc := range []struct {
		name         string
		endorsements []string
		want         int
	}{
		{"endorsed for msteams", []string{"msteams", "webchat"}, http.StatusOK},
		{"endorsed for webchat only", []string{"webchat"}, http.StatusForbidden},
		{"no endorsements", nil, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, map[string]*rsa.PublicKey{"kA": &kA.PublicKey})
			ks.endorsements = map[string][]string{"kA": tc.endorsements}
			a := newAuthAdapter(t, ks)
			rec := &recorder{}
			a.Attach(rec)
			if got := post(t, a, "Bearer "+sign(t, kA, "kA", validClaims())); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			if n := len(rec.commands()); (n == 1) != (tc.want == http.StatusOK) {
				t.Fatalf("dispatched %d commands", n)
			}
		})
	}
}

// TestTokenErrorRedacted is issue 8 item 10 on the Teams token path: an
// authority that echoes the form-encoded request puts the app password into
// MSAL's error; it reaches neither the error nor the log.
func TestTokenErrorRedacted(t *testing.T) {
	const password = "Tz8~q+P/w=r&s%u.AppPassword"
	ts := newTokenServer(t)
	ts.echo = true
	fc := newFakeConnector(t)
	var logs strings.Builder
	a, err := New(Config{
		AppID: testAppID, AppPassword: password, AppTenantID: "tenant-1",
		AuthorityURL: ts.URL, ListenAddr: ":3978", HTTPClient: ts.Client(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL)
	_, err = a.Post(bg, conv, sampleMsg)
	if err == nil {
		t.Fatal("post succeeded against a refusing authority")
	}
	for _, text := range []string{err.Error(), logs.String()} {
		for _, form := range []string{password, url.QueryEscape(password), "Tz8~q"} {
			if strings.Contains(text, form) {
				t.Fatalf("%q leaks the app password as %q", text, form)
			}
		}
	}
	if !strings.Contains(err.Error(), "client_secret=[redacted]") {
		t.Fatalf("the echoed body is not visibly redacted: %v", err)
	}
	if len(fc.recorded()) != 0 {
		t.Fatal("connector called without a token")
	}
}
