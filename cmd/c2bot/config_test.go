package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/handlers"
)

func loadWith(t *testing.T, args []string, env map[string]string, file string) (Config, error) {
	t.Helper()
	if file != "" {
		p := filepath.Join(t.TempDir(), "c2bot.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if env == nil {
			env = map[string]string{}
		}
		env["C2_CONFIG"] = p
	}
	cfg := defaults()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	registerFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	err := load(&cfg, fs, func(k string) string { return env[k] })
	return cfg, err
}

func TestConfigPrecedence(t *testing.T) {
	file := "listen: 127.0.0.1:1000\ndb: file.db\napprovers: [U1, U2]\ndefault_duration: 4h\n"
	cfg, err := loadWith(t, nil, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1000" || cfg.DB != "file.db" || !reflect.DeepEqual(cfg.Approvers, []string{"U1", "U2"}) || cfg.DefaultDuration != 4*time.Hour {
		t.Fatalf("file not applied: %+v", cfg)
	}
	cfg, err = loadWith(t, nil, map[string]string{"C2_LISTEN": "127.0.0.1:2000", "C2_APPROVERS": "U3"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2000" || cfg.DB != "file.db" || !reflect.DeepEqual(cfg.Approvers, []string{"U3"}) {
		t.Fatalf("env does not win over file: %+v", cfg)
	}
	cfg, err = loadWith(t, []string{"--listen", "127.0.0.1:3000", "--allow-self-approval"}, map[string]string{"C2_LISTEN": "127.0.0.1:2000"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:3000" || !cfg.AllowSelfApproval {
		t.Fatalf("flags do not win over env: %+v", cfg)
	}
	cfg, err = loadWith(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":3978" || cfg.DB != "c2bot.db" || cfg.DefaultDuration != 8*time.Hour || cfg.MinDuration != time.Minute ||
		cfg.MaxDuration != 72*time.Hour || cfg.ApprovalTTL != time.Hour || cfg.GraphURL != "https://graph.microsoft.com" || cfg.SlackAPIURL != "https://slack.com/api/" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestConfigTenantsFromFile(t *testing.T) {
	cfg, err := loadWith(t, nil, nil, `
tenants:
  - name: contoso
    tenant_id: 11111111-1111-1111-1111-111111111111
    client_id: app
    client_secret: s3cret
    approvers: [U1]
    channels: ["slack:C1"]
  - name: fabrikam
    tenant_id: 22222222-2222-2222-2222-222222222222
    client_id: app2
    client_cert: /etc/c2bot/fabrikam.pem
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tenants) != 2 || cfg.Tenants[0].Name != "contoso" || cfg.Tenants[0].Channels[0] != "slack:C1" || cfg.Tenants[1].ClientCert == "" {
		t.Fatalf("tenants = %+v", cfg.Tenants)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"unknown file key", nil, nil, "listn: x\n", `unknown key "listn"`},
		{"bad duration env", nil, map[string]string{"C2_MAX_DURATION": "forever"}, "", "C2_MAX_DURATION"},
		{"bad duration flag", []string{"--approval-ttl", "-1h"}, nil, "", "--approval-ttl"},
		{"default outside bounds", nil, map[string]string{"C2_DEFAULT_DURATION": "100h"}, "", "C2_DEFAULT_DURATION"},
		{"min above max", nil, map[string]string{"C2_MIN_DURATION": "2h", "C2_MAX_DURATION": "1h", "C2_DEFAULT_DURATION": "1h"}, "", "C2_MIN_DURATION"},
		{"bad bool", nil, map[string]string{"C2_ALLOW_SELF_APPROVAL": "perhaps"}, "", "C2_ALLOW_SELF_APPROVAL"},
		{"secret and cert", nil, map[string]string{"C2_CLIENT_SECRET": "hunter2", "C2_CLIENT_CERT": "x.pem"}, "", "not both"},
		{"teams password without app id", nil, map[string]string{"C2_TEAMS_APP_PASSWORD": "hunter2"}, "", "C2_TEAMS_APP_ID"},
		{"slack without secret", nil, map[string]string{"C2_SLACK_BOT_TOKEN": "xoxb-hunter2"}, "", "C2_SLACK_SIGNING_SECRET"},
		{"duplicate tenant", nil, nil, "tenants:\n  - name: a\n  - name: a\n", "listed twice"},
		{"bad yaml", nil, nil, "listen: [\n", "config file"},
		{"bad tool auth env", nil, map[string]string{"C2_TOOL_AUTH": "basic"}, "", "C2_TOOL_AUTH must be legacy, delegated or app"},
		{"bad tool auth flag", []string{"--tool-auth", "oauth"}, nil, "", "C2_TOOL_AUTH"},
		{"app without app id", nil, map[string]string{"C2_TOOL_AUTH": "app"}, "", "C2_TOOL_APP_ID must name"},
		{"app id not a guid", nil, map[string]string{"C2_TOOL_AUTH": "app", "C2_TOOL_APP_ID": "backup-tool"}, "", "C2_TOOL_APP_ID must be"},
		{"app id for a delegated tool", nil, map[string]string{"C2_TOOL_AUTH": "delegated", "C2_TOOL_APP_ID": "6f3c2b0a-1111-4222-8333-944455556666"}, "", "C2_TOOL_APP_ID is set but C2_TOOL_AUTH is delegated"},
		{"bad product env", nil, map[string]string{"C2_PRODUCT": "archiver"}, "", "C2_PRODUCT must be backup or migration"},
		{"bad version env", nil, map[string]string{"C2_VERSION": "latest"}, "", "C2_VERSION must be a version"},
		{"bad tool auth in a tenant", nil, nil, "tenants:\n  - name: contoso\n    tool_auth: modern\n", "config file: tenant contoso: tool_auth must be legacy, delegated or app"},
		{"app tenant without app id", nil, nil, "tenants:\n  - name: contoso\n    tool_auth: app\n", "config file: tenant contoso: tool_app_id must name"},
		{"bad product in a tenant", nil, nil, "tenants:\n  - name: contoso\n    product: tape\n", "config file: tenant contoso: product"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.args, tt.env, tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestEverySettingHasFlagEnvAndKey(t *testing.T) {
	var c Config
	seen := map[string]bool{}
	for _, s := range c.settings() {
		if seen[s.name] {
			t.Fatalf("setting %s twice", s.name)
		}
		seen[s.name] = true
	}
	for _, name := range []string{"LISTEN", "DB", "TENANT_ID", "CLIENT_ID", "CLIENT_SECRET", "CLIENT_CERT", "GRAPH_URL", "AUTHORITY_URL",
		"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "TEAMS_APP_ID", "TEAMS_APP_PASSWORD",
		"TEAMS_APP_TENANT_ID", "BOTFRAMEWORK_OPENID_URL", "APPROVERS", "ALLOW_SELF_APPROVAL", "DEFAULT_DURATION", "MIN_DURATION",
		"MAX_DURATION", "APPROVAL_TTL", "RETRY_BASE", "PRODUCT", "VERSION", "TOOL_AUTH", "TOOL_APP_ID"} {
		if !seen[name] {
			t.Errorf("C2_%s is not a setting", name)
		}
	}
}

// TestConfigToolProfile reads the tool's profile from the file, the
// environment and the flags, and hands it to each tenant.
func TestConfigToolProfile(t *testing.T) {
	const appID = "6f3c2b0a-1111-4222-8333-944455556666"
	file := `product: Backup
version: "2.1"
tool_auth: delegated
tenants:
  - name: contoso
    tenant_id: 11111111-1111-1111-1111-111111111111
    client_id: app
    client_secret: s3cret
    product: migration
    version: "3.4"
    tool_auth: APP
    tool_app_id: ` + appID + `
`
	cfg, err := loadWith(t, nil, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Product != "backup" || cfg.Version != "2.1" || cfg.ToolAuth != "delegated" || cfg.ToolAppID != "" {
		t.Fatalf("default tenant's profile from the file: %+v", cfg)
	}
	ct := cfg.Tenants[0]
	if ct.Product != "migration" || ct.Version != "3.4" || ct.ToolAuth != "app" || ct.ToolAppID != appID {
		t.Fatalf("contoso's profile: %+v", ct)
	}
	cfg, err = loadWith(t, []string{"--tool-auth", "app", "--tool-app-id", appID},
		map[string]string{"C2_TOOL_AUTH": "legacy", "C2_PRODUCT": "migration", "C2_VERSION": "3.1"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Product != "migration" || cfg.Version != "3.1" || cfg.ToolAuth != "app" || cfg.ToolAppID != appID {
		t.Fatalf("env over file, flags over env: %+v", cfg)
	}
	cfg.TenantID, cfg.ClientID, cfg.ClientSecret, cfg.ToolAccount = "22222222-2222-2222-2222-222222222222", "app2", "s3cret", "svc-backup@contoso.example"
	tenants, err := buildTenants(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 2 {
		t.Fatalf("%d tenants", len(tenants))
	}
	got := handlers.Target(tenants[0])
	if got.Account != cfg.ToolAccount || got.Product != "migration" || got.Version != "3.1" || got.Auth != "app" || got.AppID != appID {
		t.Fatalf("the default tenant's target: %+v", got)
	}
	if got := handlers.Target(tenants[1]); got.Product != "migration" || got.Version != "3.4" || got.Auth != "app" || got.AppID != appID {
		t.Fatalf("contoso's target: %+v", got)
	}
}

func TestGovernanceSettings(t *testing.T) {
	cfg, err := loadWith(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ApprovalsRequired != 1 || cfg.RequireReason || cfg.RemindBefore != 30*time.Minute ||
		!reflect.DeepEqual(cfg.WatchCheckpoints, []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour}) {
		t.Fatalf("defaults: %+v", cfg)
	}
	file := "approvals_required: 2\nremind_before: 1h\nwatch_checkpoints: [2h, 12h]\ntenants:\n" +
		"  - {name: a, require_reason: true, remind_before: \"0\", approvals_required: 3}\n  - {name: b}\n"
	cfg, err = loadWith(t, []string{"--require-reason"}, map[string]string{"C2_REMIND_BEFORE": "0", "C2_WATCH_INTERVAL": "2m"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ApprovalsRequired != 2 || !cfg.RequireReason || cfg.RemindBefore != 0 || cfg.WatchInterval != 2*time.Minute ||
		!reflect.DeepEqual(cfg.WatchCheckpoints, []time.Duration{2 * time.Hour, 12 * time.Hour}) {
		t.Fatalf("loaded: %+v", cfg)
	}
	n, reason, remind := cfg.governance(cfg.Tenants[0])
	if n != 3 || !reason || remind != 0 {
		t.Fatalf("tenant a: %d %v %s", n, reason, remind)
	}
	cfg.RequireReason = false
	cfg.RemindBefore = time.Hour
	if n, reason, remind := cfg.governance(cfg.Tenants[1]); n != 2 || reason || remind != time.Hour {
		t.Fatalf("tenant b inherits: %d %v %s", n, reason, remind)
	}
	for _, bad := range []map[string]string{
		{"C2_APPROVALS_REQUIRED": "0"}, {"C2_APPROVALS_REQUIRED": "two"}, {"C2_REMIND_BEFORE": "soon"},
		{"C2_WATCH_CHECKPOINTS": "1h,never"}, {"C2_WATCH_INTERVAL": "0"},
	} {
		if _, err := loadWith(t, nil, bad, ""); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := loadWith(t, nil, nil, "tenants:\n  - {name: a, remind_before: later}\n"); err == nil {
		t.Error("a bad tenant remind_before was accepted")
	}
}

// A file that is not a mapping of settings is refused, not ignored (found by
// FuzzConfigFile: an anchor swallowed the whole file and its secret; later,
// a top-level {…} mapping after which yaml.v3 drops every line).
func TestConfigFileMustBeAMapping(t *testing.T) {
	for _, file := range []string{"&0,\nclient_secret: s\n", "- listen: x\n", "just text\n", " channels:\nclient_secret: s\n",
		"{}\nclient_secret: s\n", "{listen: 127.0.0.1:1}\napprovers: [slack:U1]\n"} {
		if _, err := loadWith(t, nil, nil, file); err == nil || !strings.Contains(err.Error(), "config file") {
			t.Errorf("%q: err = %v, want a refusal saying it must be a mapping", file, err)
		}
	}
	if _, err := loadWith(t, nil, nil, "# only a comment\n"); err != nil {
		t.Errorf("an empty file: %v", err)
	}
}
