package main

import (
	"os/exec"
	"strings"
	"testing"
)

func TestDoctorOnSandbox(t *testing.T) {
	sb, env := sandboxEnv(t)
	cmd := exec.Command(binary, "doctor")
	cmd.Env = childEnv(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, want := range []string{"ok   database", "ok   tenant sandbox", sandboxTenantIDPrefix} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), env["C2_CLIENT_SECRET"]) {
		t.Fatal("doctor printed the client secret")
	}
	if n := patches(sb, ""); n != 0 {
		t.Fatalf("doctor wrote to the tenant %d times", n)
	}

	// Without an approver, doctor says nobody can approve.
	env["C2_APPROVERS"] = ""
	delete(env, "C2_APPROVERS")
	cmd = exec.Command(binary, "doctor")
	cmd.Env = childEnv(env)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FAIL   approvers") {
		t.Fatalf("doctor without approvers: %v\n%s", err, out)
	}
}

const sandboxTenantIDPrefix = "signed in to c2b0c2b0"
