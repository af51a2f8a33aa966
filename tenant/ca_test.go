package tenant

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/tenant/sandbox"
)

// The Conditional Access shapes below are Microsoft's documented templates
// and examples, each with the verdict its page documents for the three tool
// profiles. The same table runs through the sandbox's What If
// (TestCAShapesAgreeWithWhatIf).

const learnCA = "https://learn.microsoft.com/entra/identity/conditional-access/"

// Directory the cases assume (and the agreement test builds in the sandbox).
const (
	caToolID     = sandbox.DefaultToolAccountID
	caGuestID    = "87d349ed-44d7-43e1-9a83-5f2406dee5bd" // a sandbox user made a guest
	caBreakGlass = "e5a1b2c3-0000-4000-8000-00000000b6a5"
	// caGroupDirect holds the tool account; caGroupParent holds caGroupDirect
	// (so the account is in it through nesting); caGroupOther does not.
	caGroupDirect = "a1000000-0000-4000-8000-000000000001"
	caGroupParent = "a1000000-0000-4000-8000-000000000002"
	caGroupOther  = "a1000000-0000-4000-8000-000000000003"
	// The tool account holds Exchange Administrator.
	roleExchangeAdmin = "29232cdf-9323-42fd-ade2-1d097af3e4de"
	roleGlobalAdmin   = "62e90394-69f5-4237-9190-012177145e10"
	// The tool's own single-tenant app, and a multitenant app registered
	// in another tenant.
	caToolSPID     = "b2000000-0000-4000-8000-000000000001"
	caToolAppID    = "b2000000-0000-4000-8000-0000000000a1"
	caForeignSPID  = "b2000000-0000-4000-8000-000000000002"
	caForeignAppID = "b2000000-0000-4000-8000-0000000000a2"
	caForeignOwner = "f0000000-0000-4000-8000-000000000001"
	// Windows Azure Service Management API.
	appAzureManagement = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
)

// adminRoles are the 14 roles of "Require MFA for administrators"
// (policy-old-require-mfa-admin; the same list as the What If example 3 of
// https://learn.microsoft.com/graph/api/conditionalaccessroot-evaluate).
var adminRoles = []string{
	"62e90394-69f5-4237-9190-012177145e10", "194ae4cb-b126-40b2-bd5b-6091b380977d",
	"f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "29232cdf-9323-42fd-ade2-1d097af3e4de",
	"b1be1c3e-b65d-4f19-8427-f6fa0d97feb9", "729827e3-9c14-49f7-bb1b-9608f156bbb8",
	"b0f54661-2d74-4c50-afa3-1ec803f12efe", "fe930be7-5e62-47db-91af-98c3a49a38b1",
	"c4e39bd9-1100-46d3-8c65-fb160da0071f", "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
	"158c047a-c907-4556-b7ef-446551a6b5f7", "966707d0-3269-4727-9be2-8c3a10f19b9d",
	"7be44c8a-adaf-4e2a-84d6-ab2649e08a13", "e8611ab8-c189-46e8-94e1-60213ab1f814",
}

// Verdict codes, one per profile, "X" or "exo/spo" when the two resources
// differ: B applies and blocks today; R applies, grant defeats the tool,
// report-only (never blocks today); A applies and the tool can pass; M may
// apply and its grant defeats the tool; N does not apply.
type caCase struct {
	name, source string
	policy       sandbox.Policy
	// who: "" is the tool account (or the tool's service principal for
	// app); "guest" a guest user; "foreign" a multitenant app's principal.
	who     string
	legacy  string
	deleg   string
	app     string
	managed bool
	// conds names the condition behind M (checked for legacy/delegated or
	// app, whichever is M).
	conds []string
}

func pol(name, state string, clients []string, users []string, more sandbox.PolicyMore) sandbox.Policy {
	return sandbox.Policy{
		ID: sandboxPolicyID(name), DisplayName: name, State: state, ClientAppTypes: clients,
		IncludeUsers: users, ExcludeUsers: []string{caBreakGlass}, PolicyMore: more,
	}
}

// sandboxPolicyID derives a stable GUID from a name.
func sandboxPolicyID(name string) string {
	h := uint32(2166136261)
	for _, c := range []byte(name) {
		h = (h ^ uint32(c)) * 16777619
	}
	const hex = "0123456789abcdef"
	b := []byte("c0000000-0000-4000-8000-000000000000")
	for i := 0; i < 8; i++ {
		b[35-i] = hex[(h>>(4*i))&0xf]
	}
	return string(b)
}

var (
	all     = []string{"All"}
	legacyC = []string{"exchangeActiveSync", "other"}
	mfa     = []string{"mfa"}
	block   = []string{"block"}
)

func caCases() []caCase {
	const on, ro, off = "enabled", "enabledForReportingButNotEnforced", "disabled"
	return []caCase{
		{name: "block legacy authentication, all users", source: learnCA + "policy-block-legacy-authentication",
			policy: pol("Block legacy authentication", on, legacyC, all, sandbox.PolicyMore{Grant: block}),
			legacy: "B", deleg: "N", app: "N"},
		{name: "block legacy authentication, report-only", source: learnCA + "concept-conditional-access-report-only",
			policy: pol("Block legacy authentication (report-only)", ro, legacyC, all, sandbox.PolicyMore{Grant: block}),
			legacy: "R", deleg: "N", app: "N"},
		{name: "Microsoft-managed block legacy authentication, report-only", source: learnCA + "managed-policies",
			policy: pol("Microsoft-managed: Block legacy authentication", ro, legacyC, all, sandbox.PolicyMore{Grant: block}),
			legacy: "R", deleg: "N", app: "N", managed: true},
		{name: "Microsoft-managed MFA for all users, report-only", source: learnCA + "managed-policies",
			policy: pol("Microsoft-managed: Multifactor authentication for all users", ro, all, all, sandbox.PolicyMore{Grant: mfa}),
			legacy: "R", deleg: "R", app: "N", managed: true},
		{name: "require MFA for all users", source: learnCA + "howto-conditional-access-policy-all-users-mfa",
			policy: pol("Require multifactor authentication for all users", on, all, all, sandbox.PolicyMore{Grant: mfa}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "require MFA for all users, tool account excluded", source: learnCA + "concept-conditional-access-users-groups",
			policy: func() sandbox.Policy {
				p := pol("Require MFA for all users except the tool", on, all, all, sandbox.PolicyMore{Grant: mfa})
				p.ExcludeUsers = append(p.ExcludeUsers, caToolID)
				return p
			}(),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA strength for all users", source: learnCA + "policy-all-users-mfa-strength",
			policy: pol("Require MFA strength for all users", on, all, all, sandbox.PolicyMore{Grant: []string{}, AuthStrength: "Multifactor authentication"}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "MFA for administrators, the account holds Exchange Administrator", source: learnCA + "policy-old-require-mfa-admin",
			policy: pol("Require multifactor authentication for admins", on, all, nil, sandbox.PolicyMore{IncludeRoles: adminRoles, Grant: mfa}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "MFA for Global Administrators only", source: learnCA + "concept-conditional-access-users-groups",
			policy: pol("Require MFA for Global Administrators", on, all, nil, sandbox.PolicyMore{IncludeRoles: []string{roleGlobalAdmin}, Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA for all users, the account's role excluded", source: learnCA + "concept-conditional-access-users-groups",
			policy: pol("Require MFA except Exchange Administrators", on, all, all, sandbox.PolicyMore{ExcludeRoles: []string{roleExchangeAdmin}, Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA for a group the account is in through a nested group", source: learnCA + "concept-conditional-access-users-groups",
			policy: pol("Require MFA for all staff", on, all, nil, sandbox.PolicyMore{IncludeGroups: []string{caGroupParent}, Grant: mfa}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "MFA for all users, the account's group excluded", source: learnCA + "concept-conditional-access-users-groups",
			policy: pol("Require MFA except service accounts", on, all, all, sandbox.PolicyMore{ExcludeGroups: []string{caGroupDirect}, Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA for another group", source: learnCA + "concept-conditional-access-users-groups",
			policy: pol("Require MFA for finance", on, all, nil, sandbox.PolicyMore{IncludeGroups: []string{caGroupOther}, Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA strength for guests, the account is a member", source: learnCA + "policy-guests-mfa-strength",
			policy: pol("Require MFA for guest access", on, all, nil, sandbox.PolicyMore{IncludeGuestTypes: []string{"internalGuest", "b2bCollaborationGuest", "b2bCollaborationMember", "b2bDirectConnectUser", "otherExternalUser", "serviceProvider"}, Grant: []string{}, AuthStrength: "Multifactor authentication"}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA strength for guests, the account is a guest", source: learnCA + "policy-guests-mfa-strength", who: "guest",
			policy: pol("Require MFA for guest access (guest)", on, all, nil, sandbox.PolicyMore{IncludeGuestTypes: []string{"internalGuest", "b2bCollaborationGuest", "b2bCollaborationMember", "b2bDirectConnectUser", "otherExternalUser", "serviceProvider"}, Grant: []string{}, AuthStrength: "Multifactor authentication"}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "MFA for GuestsOrExternalUsers, the account is a guest", source: learnCA + "policy-old-require-mfa-guest", who: "guest",
			policy: pol("Require MFA for guests (classic)", on, all, []string{"GuestsOrExternalUsers"}, sandbox.PolicyMore{Grant: mfa}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "MFA for all users except guests, the account is a guest", source: learnCA + "concept-conditional-access-users-groups", who: "guest",
			policy: func() sandbox.Policy {
				p := pol("Require MFA for members", on, all, all, sandbox.PolicyMore{Grant: mfa})
				p.ExcludeUsers = append(p.ExcludeUsers, "GuestsOrExternalUsers")
				return p
			}(),
			legacy: "N", deleg: "N", app: "N"},
		{name: "block legacy authentication to Office 365", source: learnCA + "concept-conditional-access-cloud-apps",
			policy: pol("Block legacy authentication to Office 365", on, legacyC, all, sandbox.PolicyMore{IncludeApplications: []string{"Office365"}, Grant: block}),
			legacy: "B", deleg: "N", app: "N"},
		{name: "MFA for Office 365 except SharePoint Online", source: learnCA + "concept-conditional-access-cloud-apps",
			policy: pol("Require MFA for Office 365 except SharePoint", on, all, all, sandbox.PolicyMore{IncludeApplications: []string{"Office365"}, ExcludeApplications: []string{AppSharePointOnline}, Grant: mfa}),
			legacy: "B/N", deleg: "B/N", app: "N"},
		{name: "MFA for Exchange Online only", source: learnCA + "concept-conditional-access-cloud-apps",
			policy: pol("Require MFA for Exchange Online", on, all, all, sandbox.PolicyMore{IncludeApplications: []string{AppExchangeOnline}, Grant: mfa}),
			legacy: "B/N", deleg: "B/N", app: "N"},
		{name: "MFA for Azure management", source: learnCA + "policy-old-require-mfa-azure-mgmt",
			policy: pol("Require MFA for Azure management", on, all, all, sandbox.PolicyMore{IncludeApplications: []string{appAzureManagement}, Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "require a compliant device", source: learnCA + "policy-all-users-device-compliance",
			policy: pol("Require a compliant device", on, all, all, sandbox.PolicyMore{Grant: []string{"compliantDevice"}}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "compliant or hybrid-joined device or MFA (OR)", source: learnCA + "policy-alt-all-users-compliant-hybrid-or-mfa",
			policy: pol("Require compliant or hybrid joined device or MFA", on, all, all, sandbox.PolicyMore{Grant: []string{"mfa", "compliantDevice", "domainJoinedDevice"}, GrantOperator: "OR"}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "phishing-resistant MFA for administrators", source: learnCA + "policy-admin-phish-resistant-mfa",
			policy: pol("Require phishing-resistant MFA for admins", on, all, nil, sandbox.PolicyMore{IncludeRoles: adminRoles, Grant: []string{}, AuthStrength: "Phishing-resistant MFA"}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "approved client app or app protection policy", source: learnCA + "policy-all-users-approved-app-or-app-protection",
			policy: pol("Require approved client apps or app protection", on, all, all, sandbox.PolicyMore{Grant: []string{"approvedApplication", "compliantApplication"}, GrantOperator: "OR"}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "require terms of use", source: learnCA + "policy-all-users-require-terms-of-use",
			policy: pol("Require terms of use", on, all, all, sandbox.PolicyMore{Grant: []string{}, TermsOfUse: []string{"ce580154-086a-40fd-91df-8a60abac81a0"}}),
			legacy: "B", deleg: "B", app: "N"},
		{name: "block access from outside trusted locations", source: learnCA + "policy-block-by-location",
			policy: pol("Block access from untrusted locations", on, all, all, sandbox.PolicyMore{IncludeLocations: all, ExcludeLocations: []string{"AllTrusted"}, Grant: block}),
			legacy: "M", deleg: "M", app: "N", conds: []string{"locations"}},
		{name: "block unknown or unsupported device platforms", source: learnCA + "policy-all-users-device-unknown-unsupported",
			policy: pol("Block unknown platforms", on, all, all, sandbox.PolicyMore{IncludePlatforms: []string{"all"}, ExcludePlatforms: []string{"android", "iOS", "windows", "macOS", "linux"}, Grant: block}),
			legacy: "M", deleg: "M", app: "N", conds: []string{"platforms"}},
		{name: "MFA for risky sign-ins", source: learnCA + "howto-conditional-access-policy-risk",
			policy: pol("Require MFA for risky sign-ins", on, all, all, sandbox.PolicyMore{SignInRiskLevels: []string{"high", "medium"}, Grant: mfa}),
			legacy: "M", deleg: "M", app: "N", conds: []string{"signInRisk"}},
		{name: "password change for high-risk users (AND)", source: learnCA + "howto-conditional-access-policy-risk-user",
			policy: pol("Require password change for high-risk users", on, all, all, sandbox.PolicyMore{UserRiskLevels: []string{"high"}, Grant: []string{"mfa", "passwordChange"}, GrantOperator: "AND"}),
			legacy: "M", deleg: "M", app: "N", conds: []string{"userRisk"}},
		{name: "block device code flow", source: learnCA + "policy-block-authentication-flows",
			policy: pol("Block device code flow", on, all, all, sandbox.PolicyMore{TransferMethods: "deviceCodeFlow", Grant: block}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA to register security information (user action)", source: learnCA + "policy-all-users-security-info-registration",
			policy: pol("Securing security info registration", on, all, all, sandbox.PolicyMore{IncludeUserActions: []string{"urn:user:registersecurityinfo"}, Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "MFA for browsers only", source: learnCA + "concept-conditional-access-conditions",
			policy: pol("Require MFA in browsers", on, []string{"browser"}, all, sandbox.PolicyMore{Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "session control only (sign-in frequency, no grant)", source: learnCA + "policy-all-users-persistent-browser",
			policy: pol("Sign-in frequency for all users", on, all, all, sandbox.PolicyMore{Grant: []string{}}),
			legacy: "A", deleg: "A", app: "N"},
		{name: "require MFA for all users, disabled", source: learnCA + "what-if-tool",
			policy: pol("Require MFA (off)", off, all, all, sandbox.PolicyMore{Grant: mfa}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "workload identities: block all single-tenant service principals", source: "https://learn.microsoft.com/graph/api/conditionalaccessroot-evaluate",
			policy: pol("All ST SPs_All resources_No conditions_Block", on, all, nil, sandbox.PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}, Grant: block}),
			legacy: "N", deleg: "N", app: "B"},
		{name: "workload identities: block the tool's service principal outside trusted locations", source: "https://learn.microsoft.com/entra/identity/conditional-access/workload-identity",
			policy: pol("Block the backup app outside trusted locations", on, all, nil, sandbox.PolicyMore{IncludeServicePrincipals: []string{caToolSPID}, IncludeLocations: all, ExcludeLocations: []string{"AllTrusted"}, Grant: block}),
			legacy: "N", deleg: "N", app: "M", conds: []string{"locations"}},
		{name: "workload identities: block, the tool's service principal excluded", source: "https://learn.microsoft.com/entra/identity/conditional-access/workload-identity",
			policy: pol("Block service principals except the backup app", on, all, nil, sandbox.PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}, ExcludeServicePrincipals: []string{caToolSPID}, Grant: block}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "workload identities: block risky service principals", source: "https://learn.microsoft.com/entra/identity/conditional-access/workload-identity",
			policy: pol("Block high-risk service principals", on, all, nil, sandbox.PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}, ServicePrincipalRiskLevels: []string{"high"}, Grant: block}),
			legacy: "N", deleg: "N", app: "M", conds: []string{"servicePrincipalRisk"}},
		{name: "workload identities: a multitenant app is out of scope", source: learnCA + "concept-conditional-access-users-groups", who: "foreign",
			policy: pol("Block all service principals (multitenant app)", on, all, nil, sandbox.PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}, Grant: block}),
			legacy: "N", deleg: "N", app: "N"},
		{name: "workload identities: block in report-only", source: learnCA + "workload-identity",
			policy: pol("Block service principals (report-only)", ro, all, nil, sandbox.PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}, Grant: block}),
			legacy: "N", deleg: "N", app: "R"},
	}
}

// caPrincipal is the principal a case evaluates for one profile, as the
// directory above defines it.
func caPrincipal(who, auth string) CAPrincipal {
	if auth == AuthApp {
		if who == "foreign" {
			return CAPrincipal{Kind: CAPrincipalServicePrincipal, ID: caForeignSPID, AppID: caForeignAppID, ForeignApp: true}
		}
		return CAPrincipal{Kind: CAPrincipalServicePrincipal, ID: caToolSPID, AppID: caToolAppID}
	}
	if who == "guest" {
		return CAPrincipal{Kind: CAPrincipalUser, ID: caGuestID, UserType: "guest"}
	}
	return CAPrincipal{Kind: CAPrincipalUser, ID: caToolID, UserPrincipalName: sandbox.DefaultToolAccount, UserType: "member",
		GroupIDs: []string{caGroupDirect, caGroupParent}, RoleTemplateIDs: []string{roleExchangeAdmin}}
}

// wantFor returns the expected code for one sign-in.
func (c caCase) wantFor(auth, app string) string {
	code := map[string]string{AuthLegacy: c.legacy, AuthDelegated: c.deleg, AuthApp: c.app}[auth]
	if exo, spo, ok := strings.Cut(code, "/"); ok {
		if app == AppSharePointOnline {
			return spo
		}
		return exo
	}
	return code
}

// checkVerdict compares a verdict with a code; it returns what differs.
func checkVerdict(c caCase, want string, v CAVerdict) []string {
	var bad []string
	wantApplies := map[string]CAApplies{"B": CAAppliesYes, "R": CAAppliesYes, "A": CAAppliesYes, "M": CAAppliesMaybe, "N": CAAppliesNo}[want]
	if v.Applies != wantApplies {
		bad = append(bad, "applies "+string(v.Applies)+", want "+string(wantApplies))
	}
	if v.Blocks != (want == "B") {
		bad = append(bad, "blocks mismatch")
	}
	if want != "N" && (want == "B" || want == "R" || want == "M") != v.GrantDefeats {
		bad = append(bad, "grant-defeats mismatch")
	}
	if v.ReportOnly != (c.policy.State == "enabledForReportingButNotEnforced") {
		bad = append(bad, "report-only mismatch")
	}
	if v.MicrosoftManaged != c.managed {
		bad = append(bad, "microsoft-managed mismatch")
	}
	if want == "M" {
		for _, cond := range c.conds {
			if !slices.Contains(v.Conditions, cond) {
				bad = append(bad, "condition "+cond+" not named in "+strings.Join(v.Conditions, ","))
			}
		}
	}
	return bad
}

// toCAPolicy is the case's policy as c2bot reads it from Graph.
func toCAPolicy(p sandbox.Policy) caPolicy {
	m := p.PolicyMore
	grant := m.Grant
	if grant == nil {
		grant = map[bool][]string{true: block, false: mfa}[p.Block]
	}
	apps := m.IncludeApplications
	if apps == nil && len(m.IncludeUserActions) == 0 {
		apps = all
	}
	users := p.IncludeUsers
	if len(m.IncludeServicePrincipals) > 0 {
		users = []string{"None"}
	}
	op := m.GrantOperator
	if op == "" {
		op = "OR"
	}
	var guestTenants string
	if len(m.IncludeGuestTypes) > 0 {
		guestTenants = "all"
	}
	return caPolicy{
		ID: p.ID, Name: p.DisplayName, State: p.State, TemplateID: m.TemplateID,
		ClientAppTypes: p.ClientAppTypes, BuiltInControls: grant, IncludeApplications: apps,
		IncludeUsers: users, ExcludeUsers: p.ExcludeUsers,
		IncludeGroups: m.IncludeGroups, ExcludeGroups: m.ExcludeGroups, IncludeRoles: m.IncludeRoles, ExcludeRoles: m.ExcludeRoles,
		caPolicyMore: caPolicyMore{
			HasGrant: true, GrantOperator: op, TermsOfUse: m.TermsOfUse, AuthStrength: m.AuthStrength,
			ExcludeApplications: m.ExcludeApplications, IncludeUserActions: m.IncludeUserActions,
			IncludeGuestTypes: m.IncludeGuestTypes, IncludeGuestTenants: guestTenants, ExcludeGuestTypes: m.ExcludeGuestTypes,
			IncludeServicePrincipals: m.IncludeServicePrincipals, ExcludeServicePrincipals: m.ExcludeServicePrincipals,
			IncludeLocations: m.IncludeLocations, ExcludeLocations: m.ExcludeLocations,
			IncludePlatforms: m.IncludePlatforms, ExcludePlatforms: m.ExcludePlatforms,
			SignInRiskLevels: m.SignInRiskLevels, UserRiskLevels: m.UserRiskLevels, ServicePrincipalRiskLevels: m.ServicePrincipalRiskLevels,
			DeviceFilter: m.DeviceFilter, TransferMethods: m.TransferMethods,
		},
	}
}

var caProfiles = []string{AuthLegacy, AuthDelegated, AuthApp}

// TestCAPolicyShapes evaluates every documented shape for every profile
// and both resources.
func TestCAPolicyShapes(t *testing.T) {
	cases := caCases()
	if len(cases) < 25 {
		t.Fatalf("%d shapes; the table needs at least 25", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.HasPrefix(c.source, "https://learn.microsoft.com/") {
				t.Errorf("source %q is not a Microsoft Learn page", c.source)
			}
			p := toCAPolicy(c.policy)
			for _, auth := range caProfiles {
				for _, si := range ToolSignIns(auth) {
					v := EvaluateCAPolicy(p, caPrincipal(c.who, auth), si)
					if bad := checkVerdict(c, c.wantFor(auth, si.Application), v); len(bad) > 0 {
						t.Errorf("%s → %s: %s\nreasons: %s", auth, appName(si.Application), strings.Join(bad, "; "), strings.Join(v.Reasons, " | "))
					}
					if len(v.Reasons) == 0 {
						t.Errorf("%s → %s: no reasons", auth, appName(si.Application))
					}
				}
			}
		})
	}
}

// TestManagedPolicyOnFrom: a Microsoft-managed report-only policy says
// from when Microsoft may turn it on (45 days after it was created).
func TestManagedPolicyOnFrom(t *testing.T) {
	p := toCAPolicy(caCases()[3].policy)
	p.Created = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	v := EvaluateCAPolicy(p, caPrincipal("", AuthDelegated), ToolSignIns(AuthDelegated)[0])
	if !v.MicrosoftManaged || v.Blocks || !v.ManagedOnFrom.Equal(time.Date(2027, 1, 4, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v", v)
	}
	if !slices.ContainsFunc(v.Reasons, func(r string) bool { return strings.Contains(r, "from 2027-01-04") }) {
		t.Errorf("reasons %q", v.Reasons)
	}
	p.State = "enabled"
	if v := EvaluateCAPolicy(p, caPrincipal("", AuthDelegated), ToolSignIns(AuthDelegated)[0]); !v.ManagedOnFrom.IsZero() || !v.Blocks {
		t.Errorf("switched on: %+v", v)
	}
}
