package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fuzzSecret is a client secret written into every fuzzed file; no load
// error may quote it.
const fuzzSecret = "Zq9~fuzz+secret/value"

// FuzzConfigFile loads arbitrary YAML files (plus a client secret), with
// and without an environment variable on top. Invariants: no panic; an
// error never quotes the secret; a loaded configuration is valid (window
// bounds ordered, tenant names present and unique, a known log format);
// the environment wins over the file.
func FuzzConfigFile(f *testing.F) {
	f.Add("listen: 127.0.0.1:1000\ndb: file.db\napprovers: [U1, U2]\ndefault_duration: 4h\n")
	f.Add("tenants:\n  - name: contoso\n    tenant_id: 11111111-1111-1111-1111-111111111111\n    client_id: app\n    approvers: [\"slack:U1\"]\n    channels: [\"slack:C1\"]\n")
	f.Add("teams_unauthenticated: true\nteams_tenants: [t1, t2]\nslack_team_ids: T1,E1\n")
	f.Add("min_duration: 2h\nmax_duration: 1h\n")
	f.Add("console: maybe\n")
	f.Add("tenants: [{name: a}, {name: a}]\n")
	f.Add("people:\n  alice: [\"slack:U1\", \"teams:00000000-0000-0000-0000-000000000001\"]\n")
	// The README's configuration example, when it is there.
	if raw, err := os.ReadFile(filepath.Join("..", "..", "README.md")); err == nil {
		for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(raw), -1) {
			f.Add(m[1])
		}
	}
	f.Fuzz(func(t *testing.T, file string) {
		file = file + "\nclient_secret: " + fuzzSecret + "\n"
		cfg, err := loadWith(t, nil, nil, file)
		if err != nil {
			if strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("load error quotes the client secret: %v", err)
			}
			return
		}
		if cfg.ClientSecret != fuzzSecret {
			t.Fatalf("client secret %q, want the file's", cfg.ClientSecret)
		}
		if cfg.MinDuration > cfg.DefaultDuration || cfg.DefaultDuration > cfg.MaxDuration {
			t.Fatalf("window bounds out of order: %s %s %s", cfg.MinDuration, cfg.DefaultDuration, cfg.MaxDuration)
		}
		names := map[string]bool{}
		for _, tn := range cfg.Tenants {
			if tn.Name == "" || names[tn.Name] {
				t.Fatalf("tenant names %+v", cfg.Tenants)
			}
			names[tn.Name] = true
		}
		if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
			t.Fatalf("log format %q", cfg.LogFormat)
		}
		env, err := loadWith(t, nil, map[string]string{"C2_LISTEN": "127.0.0.9:1"}, file)
		if err == nil && env.Listen != "127.0.0.9:1" {
			t.Fatalf("C2_LISTEN does not win over the file: %q", env.Listen)
		}
	})
}
