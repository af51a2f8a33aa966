package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/tenant"
)

func runEntraApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cmdEntraApp(args, &out, &errb, func(string) string { return "" })
	return out.String(), err
}

func TestEntraAppPrintsRequiredResourceAccess(t *testing.T) {
	out, err := runEntraApp(t)
	if err != nil {
		t.Fatal(err)
	}
	var rra []tenant.RequiredResourceAccess
	if err := json.Unmarshal([]byte(out), &rra); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want, _ := tenant.RegistrationFor(nil, false)
	if len(rra) != 1 || rra[0].ResourceAppID != tenant.GraphAppID || len(rra[0].ResourceAccess) != len(want.Permissions) {
		t.Fatalf("requiredResourceAccess = %+v, want %d Graph roles", rra, len(want.Permissions))
	}
	for i, p := range want.Permissions {
		id, _ := tenant.AppRoleID(p)
		if rra[0].ResourceAccess[i] != (tenant.ResourceAccess{ID: id, Type: "Role"}) {
			t.Errorf("entry %d = %+v, want %s (%s)", i, rra[0].ResourceAccess[i], p, id)
		}
	}
	ro, err := runEntraApp(t, "--read-only", "--features", "security-defaults,signins")
	if err != nil {
		t.Fatal(err)
	}
	for _, write := range []string{"1c6e93a6-28e2-4cbb-9f64-1a46a821124d", "01c0a623-fc9b-48e9-b794-0756f8e8f067", "19b94e34-907c-4f43-bde9-38b1909ed408"} {
		if strings.Contains(ro, write) {
			t.Errorf("read-only registration grants %s:\n%s", write, ro)
		}
	}
	if !strings.Contains(ro, "b0afded3-3588-46d8-8b3d-9842eff778da") || strings.Contains(ro, "83d4163d-a2d8-4d3b-9695-4ae3ca98f888") {
		t.Errorf("--features not honoured:\n%s", ro)
	}
	for _, bad := range [][]string{{"--features", "mail"}, {"--credential", "password"}, {"--cloud", "mars"},
		{"--credential", "federated", "--federated-issuer", "http://x", "--federated-subject", "s"}, {"--out", t.TempDir()}} {
		if _, err := runEntraApp(t, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// fakeAz is an az CLI that records its calls and answers like the real one
// for the calls the script makes. Permission ids come from the table.
const fakeAz = `#!/usr/bin/env bash
set -euo pipefail
echo "$*" >>"$FAKE_AZ_LOG"
case "$1 $2" in
"cloud set") exit 0 ;;
"ad sp")
	if [ "$3" = show ]; then
		q="$*"; name=${q#*value==\'}; name=${name%%\'*}
		grep "^$name " "$FAKE_AZ_IDS" | cut -d' ' -f2
	fi ;;
"ad app")
	case "$3" in
	create)
		for a in "$@"; do case "$a" in @*) cp "${a#@}" "$FAKE_AZ_DIR/manifest.json" ;; esac; done
		echo 0c2b0c2b-0000-4000-8000-0000000000aa ;;
	federated-credential) printf '%s' "${@: -1}" >"$FAKE_AZ_DIR/fic.json" ;;
	esac ;;
"account show") echo 11111111-2222-3333-4444-555555555555 ;;
esac
`

func TestEntraAppScriptCreatesTheApp(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is missing")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "az"), []byte(fakeAz), 0o755); err != nil {
		t.Fatal(err)
	}
	reg, _ := tenant.RegistrationFor(nil, false)
	var ids strings.Builder
	for _, p := range reg.Permissions {
		id, _ := tenant.AppRoleID(p)
		ids.WriteString(p + " " + id + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "ids.txt"), []byte(ids.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := runEntraApp(t, "--out", out, "--name", "c2bot prod", "--cloud", "usgov", "--credential", "federated",
		"--federated-issuer", "https://oidc.prod-aks.azure.com/tenant/issuer/", "--federated-subject", "system:serviceaccount:c2bot:c2bot"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"create-app.sh", "create-app.ps1", "required-resource-access.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", filepath.Join(out, "create-app.sh"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAKE_AZ_LOG="+filepath.Join(dir, "calls.log"),
		"FAKE_AZ_IDS="+filepath.Join(dir, "ids.txt"), "FAKE_AZ_DIR="+dir)
	stdout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("create-app.sh: %v\n%s", err, stdout)
	}
	if !strings.Contains(string(stdout), "C2_CLIENT_ID=0c2b0c2b-0000-4000-8000-0000000000aa") ||
		!strings.Contains(string(stdout), "C2_TENANT_ID=11111111-2222-3333-4444-555555555555") {
		t.Errorf("script output lacks the settings:\n%s", stdout)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls.log"))
	for _, want := range []string{"cloud set --name AzureUSGovernment", "ad app create --display-name c2bot prod --sign-in-audience AzureADMyOrg",
		"ad sp create --id 0c2b0c2b-0000-4000-8000-0000000000aa", "ad app permission admin-consent --id 0c2b0c2b-0000-4000-8000-0000000000aa"} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("az was not called with %q; calls:\n%s", want, calls)
		}
	}
	// The manifest the script sent is the requiredResourceAccess entra-app prints.
	sent, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	printed, _ := os.ReadFile(filepath.Join(out, "required-resource-access.json"))
	var a, b any
	if err := json.Unmarshal(sent, &a); err != nil {
		t.Fatalf("manifest sent is not JSON: %v\n%s", err, sent)
	}
	_ = json.Unmarshal(printed, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("manifest sent:\n%s\nwant:\n%s", sent, printed)
	}
	var fic struct {
		Name, Issuer, Subject string
		Audiences             []string
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "fic.json"))
	if err := json.Unmarshal(raw, &fic); err != nil {
		t.Fatalf("federated credential parameters are not JSON: %v\n%s", err, raw)
	}
	if fic.Issuer != "https://oidc.prod-aks.azure.com/tenant/issuer/" || fic.Subject != "system:serviceaccount:c2bot:c2bot" ||
		!reflect.DeepEqual(fic.Audiences, []string{"api://AzureADTokenExchange"}) {
		t.Errorf("federated credential = %+v", fic)
	}
	ps, _ := os.ReadFile(filepath.Join(out, "create-app.ps1"))
	for _, want := range []string{"-Environment 'USGov'", "New-MgApplicationFederatedIdentityCredential", "'system:serviceaccount:c2bot:c2bot'", "New-MgServicePrincipalAppRoleAssignment"} {
		if !strings.Contains(string(ps), want) {
			t.Errorf("create-app.ps1 lacks %q", want)
		}
	}
	for _, p := range reg.Permissions {
		if !strings.Contains(string(ps), "'"+p+"'") {
			t.Errorf("create-app.ps1 does not grant %s", p)
		}
	}
}

// The README's permission table is the one entra-app generates from the
// same data as doctor's check; this fails when they drift apart.
func TestReadmePermissionTableIsGenerated(t *testing.T) {
	want, err := runEntraApp(t, "--markdown")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- permissions:begin (c2bot entra-app --markdown) -->\n", "<!-- permissions:end -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README has no generated permission table between %q and %q", begin, end)
	}
	if got := s[i+len(begin) : j]; got != want {
		t.Errorf("README permission table is out of date; replace it with the output of `c2bot entra-app --markdown`:\n%s", want)
	}
}
