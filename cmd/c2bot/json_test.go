package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// runDiagnose runs `c2bot diagnose args…` and returns stdout, stderr and
// the exit status.
func runDiagnose(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"diagnose"}, args...)...)
	cmd.Env = childEnv(env)
	cmd.Dir = t.TempDir()
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		status = ee.ExitCode()
	default:
		t.Fatalf("run diagnose: %v", err)
	}
	return out.String(), errOut.String(), status
}

// jsonReport is `diagnose --json` read generically, so each field of the
// contract is checked by name and type, not through the package's own types.
type jsonReport map[string]any

func (r jsonReport) str(t *testing.T, path string, v any) string {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s is %T (%v), want a string", path, v, v)
	}
	return s
}

func (r jsonReport) obj(t *testing.T, path string, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, want an object", path, v)
	}
	return m
}

func (r jsonReport) arr(t *testing.T, path string, v any) []any {
	t.Helper()
	if v == nil {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("%s is %T, want an array", path, v)
	}
	return a
}

// contract checks every field `diagnose --json` promises and returns the
// plan kinds, the blocking checks and the findings' policy ids.
func (r jsonReport) contract(t *testing.T) (kinds, blockers, policyIDs []string) {
	t.Helper()
	if r.str(t, "tenant", r["tenant"]) == "" || r.str(t, "tenant_id", r["tenant_id"]) == "" {
		t.Fatalf("tenant or tenant_id empty: %v %v", r["tenant"], r["tenant_id"])
	}
	if _, err := time.Parse(time.RFC3339, r.str(t, "checked_at", r["checked_at"])); err != nil {
		t.Fatalf("checked_at: %v", err)
	}
	if _, ok := r["blocked"].(bool); !ok {
		t.Fatalf("blocked is %T, want a boolean", r["blocked"])
	}
	prof := r.obj(t, "profile", r["profile"])
	if auth := r.str(t, "profile.auth", prof["auth"]); !slices.Contains([]string{"legacy", "delegated", "app"}, auth) {
		t.Fatalf("profile.auth = %q", auth)
	}
	if inferred, ok := prof["inferred"].(bool); !ok {
		t.Fatalf("profile.inferred is %T", prof["inferred"])
	} else if inferred && r.str(t, "profile.inferred_from", prof["inferred_from"]) == "" {
		t.Fatal("an inferred profile does not say from what")
	}
	platform := r.arr(t, "platform", r["platform"])
	if len(platform) == 0 {
		t.Fatal("platform[] is empty")
	}
	ids := map[string]string{}
	for i, p := range platform {
		f := r.obj(t, "platform[]", p)
		id := r.str(t, "platform[].id", f["id"])
		state := r.str(t, "platform[].state", f["state"])
		if id == "" || r.str(t, "platform[].title", f["title"]) == "" || r.str(t, "platform[].effect", f["effect"]) == "" ||
			!strings.HasPrefix(r.str(t, "platform[].source", f["source"]), "https://") {
			t.Fatalf("platform[%d] incomplete: %v", i, f)
		}
		if !slices.Contains([]string{"available", "phasing_out", "retired", "deprecated", "in_effect"}, state) {
			t.Fatalf("platform[%d].state = %q", i, state)
		}
		if since, ok := f["since"]; !ok {
			t.Fatalf("platform[%d] has no since", i)
		} else if since != nil {
			if _, err := time.Parse(time.RFC3339, r.str(t, "platform[].since", since)); err != nil {
				t.Fatalf("platform[%d].since: %v", i, err)
			}
		}
		ids[id] = state
	}
	if ids["exchange_basic_auth"] != "retired" || ids["sharepoint_idcrl"] == "" || ids["security_defaults"] == "" {
		t.Fatalf("Exchange basic auth is %q, want retired since 2022: %v", ids["exchange_basic_auth"], ids)
	}
	findings := r.arr(t, "findings", r["findings"])
	if len(findings) == 0 {
		t.Fatal("findings[] is empty")
	}
	for i, x := range findings {
		f := r.obj(t, "findings[]", x)
		check := r.str(t, "findings[].check", f["check"])
		sev := r.str(t, "findings[].severity", f["severity"])
		if check == "" || r.str(t, "findings[].title", f["title"]) == "" || !slices.Contains([]string{"ok", "info", "warning", "blocker"}, sev) {
			t.Fatalf("findings[%d] incomplete: %v", i, f)
		}
		for _, e := range r.arr(t, "findings[].evidence", f["evidence"]) {
			ev := r.obj(t, "findings[].evidence[]", e)
			r.str(t, "findings[].evidence[].name", ev["name"])
			r.str(t, "findings[].evidence[].value", ev["value"])
		}
		if v, ok := f["fix"]; ok {
			r.str(t, "findings[].fix", v)
		}
		if v, ok := f["policy_id"]; ok {
			policyIDs = append(policyIDs, r.str(t, "findings[].policy_id", v))
		}
		if sev == "blocker" {
			blockers = append(blockers, check)
		}
	}
	signins := r.obj(t, "signins", r["signins"])
	for _, x := range r.arr(t, "signins.failed", signins["failed"]) {
		g := r.obj(t, "signins.failed[]", x)
		if _, ok := g["error_code"].(float64); !ok {
			t.Fatalf("signins.failed[].error_code is %T", g["error_code"])
		}
		why := r.arr(t, "signins.failed[].explained_by", g["explained_by"])
		if len(why) == 0 {
			t.Errorf("failed sign-ins with error %v are explained by nothing", g["error_code"])
		}
		for _, w := range why {
			r.str(t, "signins.failed[].explained_by[]", w)
		}
	}
	for _, x := range r.arr(t, "plan", r["plan"]) {
		it := r.obj(t, "plan[]", x)
		kinds = append(kinds, r.str(t, "plan[].kind", it["kind"]))
		r.str(t, "plan[].before", it["before"])
		r.str(t, "plan[].after", it["after"])
	}
	if r["blocked"] == true && len(kinds) == 0 && r.str(t, "no_fix", r["no_fix"]) == "" {
		t.Fatal("blocked with an empty plan, and no_fix does not say why")
	}
	if len(kinds) > 0 {
		if _, ok := r["no_fix"]; ok {
			t.Fatalf("no_fix %q beside a plan", r["no_fix"])
		}
	}
	return kinds, blockers, policyIDs
}

// TestDiagnoseJSONContract runs the real binary on every scenario and checks
// the JSON fields scripts rely on, the verdict of each scenario and the exit
// status: 0 when nothing blocks, 3 when something does.
func TestDiagnoseJSONContract(t *testing.T) {
	tests := []struct {
		scenario string
		status   int
		kinds    []string
		blocker  string // a check that must block
		policy   bool   // a finding names a policy
		noFix    string // in no_fix, lower-cased
	}{
		{scenario: "security-defaults", status: 3, kinds: []string{"security_defaults"}, blocker: "security_defaults"},
		{scenario: "vendor-today", status: 3, noFix: "update the tool"},
		{scenario: "vendor-2025", status: 3, kinds: []string{"security_defaults", "sharepoint_legacy_auth"}, blocker: "sharepoint_legacy_auth"},
		{scenario: "mfa-nested-group", status: 3, kinds: []string{"ca_exclude_user"}, blocker: "conditional_access", policy: true},
		{scenario: "workload-identity", status: 3, kinds: []string{"ca_exclude_service_principal"}, blocker: "conditional_access", policy: true},
		{scenario: "clean", status: 0},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			out, errOut, status := runDiagnose(t, nil, "--sandbox", "--json", "--scenario", tt.scenario)
			if status != tt.status {
				t.Fatalf("exit status %d, want %d\n%s\n%s", status, tt.status, out, errOut)
			}
			var r jsonReport
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if r["tenant"] != sandboxTenantName {
				t.Errorf("tenant = %v", r["tenant"])
			}
			kinds, blockers, policies := r.contract(t)
			if strings.Join(kinds, ",") != strings.Join(tt.kinds, ",") {
				t.Errorf("plan kinds %v, want %v", kinds, tt.kinds)
			}
			if blocked := r["blocked"].(bool); blocked != (tt.status == exitBlocked) {
				t.Errorf("blocked = %v with exit status %d", blocked, status)
			}
			if tt.blocker != "" && !slices.Contains(blockers, tt.blocker) {
				t.Errorf("no %s blocker among %v", tt.blocker, blockers)
			}
			if tt.policy && len(policies) == 0 {
				t.Error("no finding names the policy")
			}
			if tt.noFix != "" {
				if nf, _ := r["no_fix"].(string); !strings.Contains(strings.ToLower(nf), tt.noFix) {
					t.Errorf("no_fix = %q, want it to say %q", nf, tt.noFix)
				}
			}
		})
	}
}

// TestDiagnoseExitStatus: the text report follows the same exit statuses,
// a mistake on the command line is 2, and a tenant that cannot be read is 1.
func TestDiagnoseExitStatus(t *testing.T) {
	if out, _, status := runDiagnose(t, nil, "--sandbox", "--scenario", "clean"); status != 0 || !strings.Contains(out, "Diagnosis for sandbox: 0 blocker(s)") {
		t.Errorf("clean: status %d\n%s", status, out)
	}
	if out, _, status := runDiagnose(t, nil, "--sandbox", "--scenario", "security-defaults"); status != exitBlocked || !strings.Contains(out, "Request temporary fix") {
		t.Errorf("security-defaults: status %d\n%s", status, out)
	}
	if _, errOut, status := runDiagnose(t, nil, "--sandbox", "--scenario", "nope"); status != 2 || !strings.Contains(errOut, "unknown scenario") {
		t.Errorf("unknown scenario: status %d, %s", status, errOut)
	}
	if _, errOut, status := runDiagnose(t, map[string]string{"C2_TOOL_AUTH": "basic"}, "--sandbox"); status != 2 || !strings.Contains(errOut, "C2_TOOL_AUTH") {
		t.Errorf("bad C2_TOOL_AUTH: status %d, %s", status, errOut)
	}
	// A tenant that refuses c2bot's credentials: an error, not a verdict.
	_, env := sandboxEnv(t)
	env["C2_CLIENT_SECRET"] = "hunter2-wrong"
	_, errOut, status := runDiagnose(t, env, "--json")
	if status != 1 || !strings.Contains(errOut, "diagnose sandbox") || strings.Contains(errOut, "hunter2") {
		t.Errorf("refused credentials: status %d, %s", status, errOut)
	}
	_, help, status := runDiagnose(t, nil, "--help")
	for _, want := range []string{"Exit status: 0 when nothing blocks the tool, 3 when at least one finding is\na blocker", "platform[]{id, title, state, since, effect, source}",
		"explained_by", "ca_exclude_service_principal", "no_fix", "vendor-today", "-tool-auth"} {
		if !strings.Contains(help, want) {
			t.Errorf("diagnose --help lacks %q:\n%s", want, help)
		}
	}
	if status != 0 {
		t.Errorf("diagnose --help: status %d", status)
	}
}
