package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/c2bot/c2bot/tenant"
)

// entraAppOptions are the flags of `c2bot entra-app`.
type entraAppOptions struct {
	Name             string
	Features         []string
	ReadOnly         bool
	Credential       string // certificate, federated, none
	CertFile         string
	FederatedIssuer  string
	FederatedSubject string
	Cloud            string
	Out              string
	Markdown         bool
}

// Cloud names of the az CLI and of Microsoft Graph PowerShell's
// Connect-MgGraph -Environment, per C2_CLOUD.
var scriptClouds = map[string]struct{ Az, PowerShell string }{
	"public":   {"AzureCloud", "Global"},
	"usgov":    {"AzureUSGovernment", "USGov"},
	"usgovdod": {"AzureUSGovernment", "USGovDoD"},
	"china":    {"AzureChinaCloud", "China"},
}

func cmdEntraApp(argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var o entraAppOptions
	var features string
	fs := flag.NewFlagSet("c2bot entra-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Name, "name", "c2bot", "display name of the app registration")
	fs.StringVar(&features, "features", "", "comma-separated features to grant (default all): "+strings.Join(tenant.FeatureKeys(), ", "))
	fs.BoolVar(&o.ReadOnly, "read-only", false, "grant only what diagnose, signins and doctor read: no change can be applied or reverted")
	fs.StringVar(&o.Credential, "credential", "certificate", "how c2bot signs in: certificate (--cert-file), federated (--federated-issuer, --federated-subject) or none")
	fs.StringVar(&o.CertFile, "cert-file", "", "public certificate (PEM) to add to the app, with --credential certificate")
	fs.StringVar(&o.FederatedIssuer, "federated-issuer", "", "issuer of the workload identity tokens (the AKS OIDC issuer URL, https://token.actions.githubusercontent.com)")
	fs.StringVar(&o.FederatedSubject, "federated-subject", "", "their subject (system:serviceaccount:NAMESPACE:NAME, repo:ORG/REPO:environment:prod)")
	fs.StringVar(&o.Cloud, "cloud", "", "Microsoft cloud: public, usgov, usgovdod, china (default C2_CLOUD, else public)")
	fs.StringVar(&o.Out, "out", "", "directory to write create-app.sh (az CLI), create-app.ps1 (Microsoft Graph PowerShell) and required-resource-access.json")
	fs.BoolVar(&o.Markdown, "markdown", false, "print the permission table of the README instead")
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("entra-app takes no arguments (got %q)", fs.Arg(0))}
	}
	o.Features = splitList(features)
	if o.Cloud == "" {
		o.Cloud = getenv("C2_CLOUD")
	}
	if o.Cloud == "" {
		o.Cloud = "public"
	}
	o.Cloud = strings.ToLower(o.Cloud)
	if _, ok := scriptClouds[o.Cloud]; !ok {
		return usageError{fmt.Sprintf("--cloud must be one of %s, not %q", cloudNames(), o.Cloud)}
	}
	reg, err := tenant.RegistrationFor(o.Features, o.ReadOnly)
	if err != nil {
		return usageError{err.Error()}
	}
	if o.Markdown {
		_, err := io.WriteString(stdout, permissionTable(reg))
		return err
	}
	switch o.Credential {
	case "certificate":
		if o.Out != "" && o.CertFile == "" {
			return usageError{"--credential certificate needs --cert-file (the public certificate; keep the private key where c2bot runs)"}
		}
	case "federated":
		if o.FederatedIssuer == "" || o.FederatedSubject == "" {
			return usageError{"--credential federated needs --federated-issuer and --federated-subject"}
		}
		if !strings.HasPrefix(o.FederatedIssuer, "https://") {
			return usageError{"--federated-issuer must be an https URL"}
		}
	case "none":
	default:
		return usageError{fmt.Sprintf("--credential must be certificate, federated or none, not %q", o.Credential)}
	}
	rra, err := reg.RequiredResourceAccess()
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(rra, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if o.Out == "" {
		fmt.Fprintf(stderr, "# requiredResourceAccess for %s (Microsoft Graph application permissions: %s)\n", o.Name, strings.Join(reg.Permissions, ", "))
		if o.Cloud != "public" {
			fmt.Fprintf(stderr, "# the ids are the global cloud's; the scripts (--out) look them up by name in the %s cloud\n", o.Cloud)
		}
		_, err := stdout.Write(js)
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{"required-resource-access.json": js}
	for name, tpl := range map[string]*template.Template{"create-app.sh": azScript, "create-app.ps1": psScript} {
		var b strings.Builder
		if err := tpl.Execute(&b, scriptData{Opts: o, Reg: reg, Cloud: scriptClouds[o.Cloud], GraphAppID: tenant.GraphAppID}); err != nil {
			return err
		}
		files[name] = []byte(b.String())
	}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(o.Out, name), data, mode); err != nil {
			return err
		}
		fmt.Fprintln(stdout, filepath.Join(o.Out, name))
	}
	return nil
}

// permissionTable is the README's table of features and permissions.
func permissionTable(reg tenant.Registration) string {
	var b strings.Builder
	b.WriteString("| feature | access | application permission | reference |\n|---|---|---|---|\n")
	for _, n := range reg.Needs {
		fmt.Fprintf(&b, "| %s (`%s`) | %s | `%s` | %s |\n", n.Feature, tenant.FeatureKey(n.Feature), n.Access, strings.Join(n.AnyOf, "` or `"), n.Doc)
	}
	return b.String()
}

type scriptData struct {
	Opts       entraAppOptions
	Reg        tenant.Registration
	Cloud      struct{ Az, PowerShell string }
	GraphAppID string
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// psQuote quotes s for PowerShell.
func psQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

var funcs = template.FuncMap{"sh": shellQuote, "ps": psQuote, "json": func(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}}

// azScript creates the app with the az CLI: the registration with its
// Graph application permissions (ids looked up by name in the signed-in
// cloud), its service principal, the credential, and admin consent.
var azScript = template.Must(template.New("az").Funcs(funcs).Parse(`#!/usr/bin/env bash
# Creates the Entra app registration c2bot signs in with, as written by
# "c2bot entra-app". Run it signed in with "az login" as an administrator who
# may grant admin consent (Privileged Role Administrator or Global Administrator).
set -euo pipefail
az cloud set --name {{sh .Cloud.Az}}
name={{sh .Opts.Name}}
graph={{sh .GraphAppID}}
permissions=({{range .Reg.Permissions}}{{sh .}} {{end}})

access=""
for p in "${permissions[@]}"; do
	id=$(az ad sp show --id "$graph" --query "appRoles[?value=='$p' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)
	if [ -z "$id" ]; then
		echo "Microsoft Graph has no application permission $p in this cloud" >&2
		exit 1
	fi
	access+="${access:+,}{\"id\":\"$id\",\"type\":\"Role\"}"
done
manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT
printf '[{"resourceAppId":"%s","resourceAccess":[%s]}]\n' "$graph" "$access" >"$manifest"

app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
	--required-resource-accesses "@$manifest" --query appId -o tsv)
az ad sp create --id "$app_id" >/dev/null
{{- if eq .Opts.Credential "certificate"}}
az ad app credential reset --id "$app_id" --cert {{sh (printf "@%s" .Opts.CertFile)}} --append >/dev/null
{{- else if eq .Opts.Credential "federated"}}
az ad app federated-credential create --id "$app_id" --parameters {{sh (printf "{\"name\":\"c2bot\",\"issuer\":%s,\"subject\":%s,\"audiences\":[\"api://AzureADTokenExchange\"]}" (json .Opts.FederatedIssuer) (json .Opts.FederatedSubject))}} >/dev/null
{{- end}}
# Admin consent grants the application permissions; retried while the new
# service principal replicates.
for attempt in 1 2 3 4 5; do
	if az ad app permission admin-consent --id "$app_id"; then
		break
	fi
	if [ "$attempt" = 5 ]; then
		echo "admin consent failed; grant it in the portal (App registrations → $name → API permissions)" >&2
		exit 1
	fi
	sleep 10
done
echo "C2_TENANT_ID=$(az account show --query tenantId -o tsv)"
echo "C2_CLIENT_ID=$app_id"
`))

// psScript does the same with Microsoft Graph PowerShell.
var psScript = template.Must(template.New("ps").Funcs(funcs).Parse(`# Creates the Entra app registration c2bot signs in with, as written by
# "c2bot entra-app", with the Microsoft Graph PowerShell SDK. Run it as an
# administrator who may grant admin consent.
$ErrorActionPreference = 'Stop'
Connect-MgGraph -Environment {{ps .Cloud.PowerShell}} -Scopes 'Application.ReadWrite.All', 'AppRoleAssignment.ReadWrite.All' -NoWelcome
$name = {{ps .Opts.Name}}
$permissions = @({{range $i, $p := .Reg.Permissions}}{{if $i}}, {{end}}{{ps $p}}{{end}})
$graph = Get-MgServicePrincipal -Filter "appId eq '{{.GraphAppID}}'"
$roleIds = foreach ($p in $permissions) {
    $role = $graph.AppRoles | Where-Object { $_.Value -eq $p -and $_.AllowedMemberTypes -contains 'Application' }
    if (-not $role) { throw "Microsoft Graph has no application permission $p in this cloud" }
    $role.Id
}
$app = New-MgApplication -DisplayName $name -SignInAudience AzureADMyOrg -RequiredResourceAccess @{
    ResourceAppId  = $graph.AppId
    ResourceAccess = @($roleIds | ForEach-Object { @{ Id = $_; Type = 'Role' } })
}
$sp = New-MgServicePrincipal -AppId $app.AppId
{{- if eq .Opts.Credential "certificate"}}
$cert = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2({{ps .Opts.CertFile}})
Update-MgApplication -ApplicationId $app.Id -KeyCredentials @(@{ Type = 'AsymmetricX509Cert'; Usage = 'Verify'; Key = $cert.RawData })
{{- else if eq .Opts.Credential "federated"}}
New-MgApplicationFederatedIdentityCredential -ApplicationId $app.Id -BodyParameter @{
    Name      = 'c2bot'
    Issuer    = {{ps .Opts.FederatedIssuer}}
    Subject   = {{ps .Opts.FederatedSubject}}
    Audiences = @('api://AzureADTokenExchange')
} | Out-Null
{{- end}}
# Admin consent: one app role assignment per application permission.
foreach ($id in $roleIds) {
    New-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -PrincipalId $sp.Id -ResourceId $graph.Id -AppRoleId $id | Out-Null
}
"C2_TENANT_ID=$((Get-MgContext).TenantId)"
"C2_CLIENT_ID=$($app.AppId)"
`))
