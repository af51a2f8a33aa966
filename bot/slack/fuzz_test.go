package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzSeedFiles are the payload fixtures (copied from ../shared/fixtures/slack
// into testdata; the shared directory is read too when it is beside the
// repository).
var fuzzSeedFiles = []string{
	"slash_command_form_body_docs_signing_example.txt", "slash_command_form_body_docs_weather.txt",
	"slash_command_form_body_boltjs_aws.txt", "block_actions_bolt_python_button.form_body.txt",
}

func addSlackSeeds(f *testing.F) {
	for _, name := range fuzzSeedFiles {
		for _, dir := range []string{"testdata", filepath.Join("..", "..", "..", "shared", "fixtures", "slack")} {
			if raw, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				path := PathCommands
				if strings.HasPrefix(name, "block_actions") {
					path = PathInteractions
				}
				f.Add(path, strings.TrimSpace(string(raw)))
			}
		}
	}
	if raw, err := os.ReadFile(filepath.Join("testdata", "block_actions_docs_message_button.json")); err == nil {
		f.Add(PathInteractions, "payload="+url.QueryEscape(string(raw)))
	}
	f.Add(PathEvents, `{"type":"url_verification","challenge":"abc"}`)
	f.Add(PathEvents, `{"type":"event_callback","team_id":"T0C2TEST","event_id":"Ev1","event":{"type":"app_mention","user":"U1","channel":"C1","text":"<@U0C2BOT> fix"}}`)
	f.Add(PathInteractions, `payload={"type":"block_actions","team":{"id":"T0OTHER"},"user":{"id":"U1","team_id":"T0OTHER"},"channel":{"id":"C1"},"actions":[{"type":"button","value":"approve r-1","action_ts":"1"}]}`)
	f.Add(PathCommands, "team_id=T0C2TEST&channel_id=C1&user_id=U1&text=fix+--for+2h&trigger_id=t1")
}

// FuzzSlackRequest drives the HTTP-mode handler with arbitrary bodies.
// Invariants: it never panics; a request whose signature is wrong runs
// nothing; a signed one runs at most one command, and only when it comes
// from a served workspace, with a channel and a user.
func FuzzSlackRequest(f *testing.F) {
	addSlackSeeds(f)
	now := time.Unix(1700000000, 0)
	// One adapter for every input, as in production (its redelivery memory
	// may make a repeated input run nothing, which the invariants allow).
	a, _, _ := newTestAdapter(f, now, func(c *Config) { c.TeamIDs = []string{"T0C2TEST"} })
	h := a.Handler()
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case PathCommands, PathInteractions, PathEvents:
		default:
			path = PathCommands
		}
		rec := newRecorder()
		a.Attach(rec)

		// Unsigned and mis-signed: refused, nothing run.
		for _, sig := range []string{"", "v0=" + strings.Repeat("0", 64)} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix(), 10))
			if sig != "" {
				req.Header.Set("X-Slack-Signature", sig)
			}
			if got := serve(h, req); got.Code != http.StatusUnauthorized && got.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("unsigned %s: status %d", path, got.Code)
			}
		}
		if n := len(rec.commands()); n != 0 {
			t.Fatalf("unsigned request ran %d commands", n)
		}

		// Signed.
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix(), 10))
		mac := hmac.New(sha256.New, []byte("test-signing-secret"))
		mac.Write([]byte("v0:" + strconv.FormatInt(now.Unix(), 10) + ":" + body))
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		got := serve(h, req)
		switch got.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("signed %s: status %d", path, got.Code)
		}
		a.Close()
		cmds := rec.commands()
		if len(cmds) > 1 {
			t.Fatalf("one request ran %d commands", len(cmds))
		}
		for _, c := range cmds {
			if c.User.ID == "" || c.Conv.ID == "" {
				t.Fatalf("command without a user or channel: %+v", c)
			}
			if !strings.Contains(body, "T0C2TEST") {
				t.Fatalf("a request naming no served workspace ran %+v", c)
			}
		}
	})
}

// FuzzVerifySignature: only the exact v0 HMAC of the body within the
// window verifies.
func FuzzVerifySignature(f *testing.F) {
	raw, _ := os.ReadFile(filepath.Join("testdata", "slash_command_form_body_docs_signing_example.txt"))
	f.Add(string(raw), "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
	f.Add("", "", "")
	f.Add("x", "-1", "v0=")
	secret := "8f742231b10e8888abcd99yyyzzz85a5"
	f.Fuzz(func(t *testing.T, body, ts, sig string) {
		h := http.Header{}
		h.Set("X-Slack-Request-Timestamp", ts)
		h.Set("X-Slack-Signature", sig)
		now := time.Unix(1531420618, 0)
		err := verifySignature(h, []byte(body), secret, now)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte("v0:" + ts + ":" + body))
		want := "v0=" + hex.EncodeToString(mac.Sum(nil))
		sec, perr := strconv.ParseInt(ts, 10, 64)
		fresh := perr == nil && now.Sub(time.Unix(sec, 0)).Abs() <= signatureWindow
		match := strings.HasPrefix(sig, "v0=") && strings.EqualFold(sig[3:], want[3:]) // hex of either case
		if (err == nil) != (match && fresh) {
			t.Fatalf("verify(ts %q, sig %q) = %v; correct signature %q, fresh %v", ts, sig, err, want, fresh)
		}
	})
}
