package slack

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	const secret = "s3cr3t-signing-value"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"http mode", Config{BotToken: "xoxb-1-abc", SigningSecret: secret}, ""},
		{"socket mode", Config{BotToken: "xoxb-1-abc", AppToken: "xapp-1-abc"}, ""},
		{"rotating bot token", Config{BotToken: "xoxe.xoxb-1-abc", SigningSecret: secret}, ""},
		{"loopback http api", Config{BotToken: "xoxb-1-abc", SigningSecret: secret, APIURL: "http://127.0.0.1:9/api"}, ""},
		{"no bot token", Config{SigningSecret: secret}, "C2_SLACK_BOT_TOKEN is required"},
		{"user token as bot token", Config{BotToken: "xoxp-1-userTOKEN", SigningSecret: secret}, "C2_SLACK_BOT_TOKEN must be a bot token"},
		{"bot token as app token", Config{BotToken: "xoxb-1-abc", AppToken: "xoxb-1-appTOKEN"}, "C2_SLACK_APP_TOKEN must be an app-level token"},
		{"neither secret nor app token", Config{BotToken: "xoxb-1-abc"}, "C2_SLACK_SIGNING_SECRET"},
		{"clear-text api", Config{BotToken: "xoxb-1-abc", SigningSecret: secret, APIURL: "http://slack.example.com/api/"}, "must use https"},
		{"relative api", Config{BotToken: "xoxb-1-abc", SigningSecret: secret, APIURL: "/api/"}, "absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(cfg.APIURL, "/") || cfg.Logger == nil || cfg.Now == nil || cfg.HTTPClient == nil {
					t.Fatalf("defaults not filled: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			for _, s := range []string{secret, "userTOKEN", "appTOKEN"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("secret in error: %v", err)
				}
			}
		})
	}
	if c := (Config{BotToken: "xoxb-1", SigningSecret: "x"}); c.Validate() != nil || c.APIURL != DefaultAPIURL {
		t.Fatalf("default api url %q", c.APIURL)
	}
}

func TestRecent(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRecent(time.Minute, 3, func() time.Time { return now })
	if !r.claim("a") || r.claim("a") {
		t.Fatal("second claim of a succeeded")
	}
	r.forget("a")
	if !r.claim("a") {
		t.Fatal("claim after forget failed")
	}
	now = now.Add(2 * time.Minute)
	if !r.claim("a") {
		t.Fatal("claim after ttl failed")
	}
	for _, id := range []string{"b", "c", "d", "e"} {
		r.claim(id)
	}
	if len(r.seen) > 3 {
		t.Fatalf("kept %d ids, max 3", len(r.seen))
	}
	if !r.claim("") || !r.claim("") {
		t.Fatal("empty ids are never de-duplicated")
	}
}
