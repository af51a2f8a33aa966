package teams

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addActivitySeeds adds every activity fixture (testdata/fixtures holds the
// copies of ../shared/fixtures/teams; the shared directory is read too when
// it is beside the repository).
func addActivitySeeds(f *testing.F) {
	for _, dir := range []string{filepath.Join("testdata", "fixtures"), filepath.Join("..", "..", "..", "shared", "fixtures", "teams")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, name := range files {
			raw, err := os.ReadFile(name)
			if err != nil {
				continue
			}
			var wrapped struct {
				Activity json.RawMessage `json:"activity"`
			}
			if json.Unmarshal(raw, &wrapped) == nil && len(wrapped.Activity) > 0 {
				raw = wrapped.Activity
			}
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"type":"message","channelId":"msteams","serviceUrl":"http://127.0.0.1:1/","conversation":{"id":"c","tenantId":"` + playgroundTenant + `"},"from":{"id":"x"},"text":"fix"}`))
}

// FuzzActivity posts arbitrary activities to the unauthenticated
// (playground) handler. Invariants: no panic; every command that reaches
// the core names its sender by a non-empty aadObjectId that the activity
// carried, comes from msteams in an allowed tenant, and will be answered
// on a loopback serviceUrl.
func FuzzActivity(f *testing.F) {
	addActivitySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		// Replies go nowhere: a fuzzed serviceUrl may name any local port.
		a, err := New(Config{ListenAddr: "127.0.0.1:3978", Unauthenticated: true, Tenants: []string{playgroundTenant},
			Logger: quietLogger(), HTTPClient: &http.Client{Transport: noNetwork{}}})
		if err != nil {
			t.Fatal(err)
		}
		a.invokeWait = 0
		rec := &recorder{}
		a.Attach(rec)
		r := serve(t, a, body)
		switch r.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusNotImplemented,
			http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d", r.Code)
		}
		cmds := rec.commands()
		if len(cmds) == 0 {
			return
		}
		act, err := parseActivity(body)
		if err != nil {
			t.Fatalf("an unparsable activity ran %+v", cmds)
		}
		if act.ChannelID != teamsChannelID || !isLoopbackURL(act.ServiceURL) {
			t.Fatalf("channel %q serviceUrl %q ran %+v", act.ChannelID, act.ServiceURL, cmds)
		}
		for _, id := range act.tenantIDs() {
			if !strings.EqualFold(id, playgroundTenant) {
				t.Fatalf("tenant %q ran %+v", id, cmds)
			}
		}
		for _, c := range cmds {
			if c.Text != "help" && (c.User.ID == "" || c.User.ID != act.From.AadObjectID) {
				t.Fatalf("command %+v not from the activity's aadObjectId %q", c, act.From.AadObjectID)
			}
		}
	})
}

// FuzzInboundToken: no token but a valid Bot Framework one is accepted.
// The seeds are a valid token and its damaged forms; the fuzzer mutates
// them. A mutation that still verifies must be the valid token itself
// (base64url padding bits aside, which decode to the same bytes).
func FuzzInboundToken(f *testing.F) {
	kA, _, _ := testKeys(f)
	ks := newKeyServer(f, map[string]*rsa.PublicKey{"kA": &kA.PublicKey})
	valid := sign(f, kA, "kA", validClaims())
	f.Add(valid)
	f.Add(valid[:len(valid)-4])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("not.a.jwt")
	f.Add("")
	body := withFields(f, fixture(f, "playground_personal_message.json"), map[string]any{"text": "c2 status", "serviceUrl": testServiceURL})
	// One adapter for every input (as in production): building one per
	// input costs more than checking the token.
	a, err := New(Config{
		AppID: testAppID, AppPassword: "not-a-real-secret", AppTenantID: playgroundTenant,
		AuthorityURL: "https://127.0.0.1:1", OpenIDURL: ks.URL + "/v1/.well-known/openidconfiguration",
		ListenAddr: ":3978", HTTPClient: ks.Client(), Logger: quietLogger(),
		Now: func() time.Time { return testNow },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		rec := &recorder{}
		a.Attach(rec)
		req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, req)
		n := len(rec.commands())
		if w.Code == http.StatusOK {
			if n != 1 {
				t.Fatalf("accepted token ran %d commands", n)
			}
			if !sameJWT(token, valid) {
				t.Fatalf("a token other than the valid one was accepted: %q", token)
			}
			return
		}
		if n != 0 {
			t.Fatalf("refused token (%d) ran %d commands", w.Code, n)
		}
	})
}

// sameJWT reports whether two compact JWTs carry the same header, claims
// and signature bytes.
func sameJWT(a, b string) bool {
	pa, pb := strings.Split(strings.TrimSpace(a), "."), strings.Split(b, ".")
	if len(pa) != 3 || len(pb) != 3 {
		return false
	}
	for i := range pa {
		da, ea := decodeSeg(pa[i])
		db, eb := decodeSeg(pb[i])
		if ea != nil || eb != nil || !bytes.Equal(da, db) {
			return false
		}
	}
	return true
}

// decodeSeg decodes a JWT segment as golang-jwt does (base64url, no padding).
func decodeSeg(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// noNetwork is a transport that sends nothing.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in fuzz tests")
}
