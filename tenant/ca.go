package tenant

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// Conditional Access evaluated as Entra does, for the tool's account and the
// sign-ins it makes. EvaluateCAPolicy is pure; the I/O that gathers its
// inputs is in directory.go and whatif.go.
//
// Sources (each rule below names the one it encodes):
//   users and groups:  https://learn.microsoft.com/entra/identity/conditional-access/concept-conditional-access-users-groups
//   conditions:        https://learn.microsoft.com/entra/identity/conditional-access/concept-conditional-access-conditions
//   target resources:  https://learn.microsoft.com/entra/identity/conditional-access/concept-conditional-access-cloud-apps
//   grant controls:    https://learn.microsoft.com/entra/identity/conditional-access/concept-conditional-access-grant
//   legacy clients:    https://learn.microsoft.com/entra/identity/conditional-access/block-legacy-authentication
//   workload identity: https://learn.microsoft.com/entra/identity/conditional-access/workload-identity
//   managed policies:  https://learn.microsoft.com/entra/identity/conditional-access/managed-policies
//   report-only:       https://learn.microsoft.com/entra/identity/conditional-access/concept-conditional-access-report-only

// CAPrincipal is the identity a Conditional Access policy is evaluated for:
// the tool's user account or its service principal.
type CAPrincipal struct {
	// Kind is CAPrincipalUser or CAPrincipalServicePrincipal.
	Kind string
	// ID is the object id.
	ID                string
	UserPrincipalName string
	// UserType is "member" or "guest" (users only; compared case-insensitively).
	UserType string
	// AppID is the application id (service principals only).
	AppID string
	// DisplayName is for people.
	DisplayName string
	// GroupIDs are the transitive group memberships; GroupNames maps an id to
	// its display name, for reasons.
	GroupIDs   []string
	GroupNames map[string]string
	// RoleTemplateIDs are the directory roles held (roleTemplateId);
	// RoleNames maps a template id to the role's name.
	RoleTemplateIDs []string
	RoleNames       map[string]string
	// MembershipError says why the groups and roles could not be read (the
	// app lacks GroupMember.Read.All); policies that depend on them then
	// "may apply", naming "groups" or "roles".
	MembershipError string
	// ForeignApp: the service principal's application is registered in
	// another tenant (multitenant or SaaS). Workload-identity policies cover
	// only single-tenant service principals registered in the tenant.
	ForeignApp bool
}

// Principal kinds.
const (
	CAPrincipalUser             = "user"
	CAPrincipalServicePrincipal = "servicePrincipal"
)

// CASignIn describes the sign-in being evaluated.
type CASignIn struct {
	// Auth is the tool profile: AuthLegacy, AuthDelegated or AuthApp.
	Auth string
	// ClientAppType is "exchangeActiveSync", "other", "browser" or
	// "mobileAppsAndDesktopClients" (empty for AuthApp).
	ClientAppType string
	// Application is the resource app id, e.g. AppExchangeOnline.
	Application string
}

// Tool profiles (how the tool signs in).
const (
	AuthLegacy    = "legacy"
	AuthDelegated = "delegated"
	AuthApp       = "app"
)

// Resource application ids the tool signs in to.
const (
	// AppExchangeOnline is Office 365 Exchange Online.
	AppExchangeOnline = "00000002-0000-0ff1-ce00-000000000000"
	// AppSharePointOnline is Office 365 SharePoint Online.
	AppSharePointOnline = "00000003-0000-0ff1-ce00-000000000000"
)

// Client app types (conditionalAccessClientApp).
const (
	ClientAppBrowser            = "browser"
	ClientAppMobileAndDesktop   = "mobileAppsAndDesktopClients"
	ClientAppExchangeActiveSync = "exchangeActiveSync"
	ClientAppOther              = "other"
)

// ToolSignIns returns the sign-ins a tool with profile auth makes: Exchange
// Online and SharePoint Online, with the client app type Entra gives them.
// Legacy protocols (EWS, IMAP, POP, SharePoint IDCRL) are "Other clients";
// a modern-auth client that is not a browser is "Mobile apps and desktop
// clients" (concept-conditional-access-conditions, "Client apps"); an app
// signing in with its own credentials has no client app type. An unknown
// profile gives nil.
func ToolSignIns(auth string) []CASignIn {
	var client string
	switch auth {
	case AuthLegacy:
		client = ClientAppOther
	case AuthDelegated:
		client = ClientAppMobileAndDesktop
	case AuthApp:
	default:
		return nil
	}
	return []CASignIn{
		{Auth: auth, ClientAppType: client, Application: AppExchangeOnline},
		{Auth: auth, ClientAppType: client, Application: AppSharePointOnline},
	}
}

// CAApplies says whether a policy applies to a sign-in.
type CAApplies string

// Applicability.
const (
	CAAppliesYes   CAApplies = "applies"
	CAAppliesMaybe CAApplies = "may_apply"
	CAAppliesNo    CAApplies = "not_applies"
)

// CAVerdict is one policy's verdict for one principal and sign-in.
type CAVerdict struct {
	PolicyID, PolicyName, State string
	// Application and ClientAppType are the sign-in's (a verdict is for one
	// CASignIn).
	Application, ClientAppType string
	Applies                    CAApplies
	// LocalApplies is the local evaluator's answer; it differs from Applies
	// only where Entra's What If disagreed. WhatIfReasons is What If's
	// analysisReasons ("notSet" when it applies; empty without What If).
	LocalApplies  CAApplies
	WhatIfReasons string
	// Blocks: the policy applies, is enforced today, and the sign-in cannot
	// satisfy its grant for this Auth.
	Blocks bool
	// GrantDefeats: the sign-in cannot satisfy the grant (whether or not
	// the policy applies or is enforced); with may_apply it means "may block".
	GrantDefeats bool
	// Controls are the grant controls that defeat the tool.
	Controls []string
	// Conditions are the unresolved conditions behind may_apply:
	// "locations", "platforms", "signInRisk", "userRisk",
	// "servicePrincipalRisk", "insiderRisk", "deviceFilter",
	// "applicationFilter", "servicePrincipalFilter", "externalTenants".
	Conditions []string
	// Reasons say, for people, why it applies or not.
	Reasons []string
	// ReportOnly: state enabledForReportingButNotEnforced; never blocks today.
	ReportOnly bool
	// MicrosoftManaged: a Microsoft-managed policy (Microsoft switches it on
	// at least 45 days after it appears in report-only).
	MicrosoftManaged bool
	// ManagedOnFrom is, for a Microsoft-managed policy still in report-only,
	// the earliest day Microsoft may turn it on: 45 days after it was
	// created in the tenant (zero when the creation time is unknown).
	ManagedOnFrom time.Time
}

// CAEvaluation is the Conditional Access verdicts for the tool's sign-ins.
type CAEvaluation struct {
	// Source is CASourceWhatIf (Entra's own answer) or CASourceLocal.
	Source string
	// WhatIfError says why What If was not used, when Source is local.
	WhatIfError string
	// Verdicts hold one per policy that is not disabled and sign-in, in
	// policy order then sign-in order; the local evidence is always filled.
	Verdicts []CAVerdict
}

// Evaluation sources.
const (
	CASourceWhatIf = "whatif"
	CASourceLocal  = "local"
)

// Policy states.
const (
	caStateEnabled    = "enabled"
	caStateDisabled   = "disabled"
	caStateReportOnly = "enabledForReportingButNotEnforced"
)

// Special values in policy conditions.
const (
	caAll                   = "All"
	caNone                  = "None"
	caOffice365             = "Office365"
	caGuestsOrExternalUsers = "GuestsOrExternalUsers"
	caSPsInMyTenant         = "ServicePrincipalsInMyTenant"
)

// microsoftManagedPrefix starts the display name of every Microsoft-managed
// policy; organisations cannot rename them (managed-policies: "Organizations
// can't rename or delete any Microsoft-managed policies"), so the name is a
// reliable mark.
const microsoftManagedPrefix = "Microsoft-managed:"

// office365Apps are the apps the Office365 target covers that the tool
// signs in to (concept-conditional-access-cloud-apps, "Office 365":
// Exchange Online and SharePoint Online are among them).
var office365Apps = []string{AppExchangeOnline, AppSharePointOnline}

// managedOnAfter is how long Microsoft leaves a Microsoft-managed policy in
// report-only at least ("Microsoft enables these policies no less than 45
// days after they're introduced in your tenant if they're left in the
// Report-only state", managed-policies).
const managedOnAfter = 45 * 24 * time.Hour

// caPolicyMore is the rest of a policy's conditions and grant, as read from
// Graph; empty means not configured.
type caPolicyMore struct {
	// Created is createdDateTime (zero when Graph gives none).
	Created time.Time
	// HasGrant: grantControls is set (a session-only policy has none).
	HasGrant                    bool
	GrantOperator               string // "AND" or "OR"
	TermsOfUse                  []string
	CustomAuthenticationFactors []string
	// AuthStrength is the authentication strength's display name (or id).
	AuthStrength string

	ExcludeApplications []string
	IncludeUserActions  []string
	IncludeAuthContexts []string
	ApplicationFilter   string

	// IncludeGuestTypes / ExcludeGuestTypes are
	// includeGuestsOrExternalUsers.guestOrExternalUserTypes, split;
	// *GuestTenants is its externalTenants.membershipKind ("all",
	// "enumerated").
	IncludeGuestTypes   []string
	IncludeGuestTenants string
	ExcludeGuestTypes   []string
	ExcludeGuestTenants string

	IncludeServicePrincipals []string
	ExcludeServicePrincipals []string
	ServicePrincipalFilter   string

	IncludeLocations, ExcludeLocations []string
	IncludePlatforms, ExcludePlatforms []string
	SignInRiskLevels                   []string
	UserRiskLevels                     []string
	ServicePrincipalRiskLevels         []string
	InsiderRiskLevels                  string
	DeviceFilter                       string
	// TransferMethods is authenticationFlows.transferMethods
	// ("deviceCodeFlow,authenticationTransfer").
	TransferMethods string
}

func grantFromModel(out *caPolicy, g models.ConditionalAccessGrantControlsable) {
	out.HasGrant = true
	out.GrantOperator = deref(g.GetOperator())
	out.TermsOfUse = g.GetTermsOfUse()
	out.CustomAuthenticationFactors = g.GetCustomAuthenticationFactors()
	if a := g.GetAuthenticationStrength(); a != nil {
		out.AuthStrength = deref(a.GetDisplayName())
		if out.AuthStrength == "" {
			out.AuthStrength = deref(a.GetId())
		}
		if out.AuthStrength == "" {
			out.AuthStrength = "authentication strength"
		}
	}
}

func filterRule(f models.ConditionalAccessFilterable) string {
	if f == nil {
		return ""
	}
	rule := deref(f.GetRule())
	if rule == "" {
		return ""
	}
	if m := f.GetMode(); m != nil {
		return m.String() + ": " + rule
	}
	return rule
}

func riskStrings(levels []models.RiskLevel) []string {
	var out []string
	for _, l := range levels {
		out = append(out, l.String())
	}
	return out
}

func conditionsFromModel(out *caPolicy, cond models.ConditionalAccessConditionSetable) {
	if a := cond.GetApplications(); a != nil {
		out.ExcludeApplications = a.GetExcludeApplications()
		out.IncludeUserActions = a.GetIncludeUserActions()
		out.IncludeAuthContexts = a.GetIncludeAuthenticationContextClassReferences()
		out.ApplicationFilter = filterRule(a.GetApplicationFilter())
	}
	if u := cond.GetUsers(); u != nil {
		out.IncludeGuestTypes, out.IncludeGuestTenants = guestsFromModel(u.GetIncludeGuestsOrExternalUsers())
		out.ExcludeGuestTypes, out.ExcludeGuestTenants = guestsFromModel(u.GetExcludeGuestsOrExternalUsers())
	}
	if c := cond.GetClientApplications(); c != nil {
		out.IncludeServicePrincipals = c.GetIncludeServicePrincipals()
		out.ExcludeServicePrincipals = c.GetExcludeServicePrincipals()
		out.ServicePrincipalFilter = filterRule(c.GetServicePrincipalFilter())
	}
	if l := cond.GetLocations(); l != nil {
		out.IncludeLocations = l.GetIncludeLocations()
		out.ExcludeLocations = l.GetExcludeLocations()
	}
	if p := cond.GetPlatforms(); p != nil {
		for _, v := range p.GetIncludePlatforms() {
			out.IncludePlatforms = append(out.IncludePlatforms, v.String())
		}
		for _, v := range p.GetExcludePlatforms() {
			out.ExcludePlatforms = append(out.ExcludePlatforms, v.String())
		}
	}
	out.SignInRiskLevels = riskStrings(cond.GetSignInRiskLevels())
	out.UserRiskLevels = riskStrings(cond.GetUserRiskLevels())
	out.ServicePrincipalRiskLevels = riskStrings(cond.GetServicePrincipalRiskLevels())
	if r := cond.GetInsiderRiskLevels(); r != nil {
		out.InsiderRiskLevels = r.String()
	}
	if d := cond.GetDevices(); d != nil {
		out.DeviceFilter = filterRule(d.GetDeviceFilter())
	}
	if f := cond.GetAuthenticationFlows(); f != nil && f.GetTransferMethods() != nil {
		if m := f.GetTransferMethods().String(); m != "none" {
			out.TransferMethods = m
		}
	}
}

func guestsFromModel(g models.ConditionalAccessGuestsOrExternalUsersable) ([]string, string) {
	if g == nil || g.GetGuestOrExternalUserTypes() == nil {
		return nil, ""
	}
	var types []string
	for _, t := range strings.Split(g.GetGuestOrExternalUserTypes().String(), ",") {
		if t != "" && t != "none" {
			types = append(types, t)
		}
	}
	kind := ""
	if t := g.GetExternalTenants(); t != nil && t.GetMembershipKind() != nil {
		kind = t.GetMembershipKind().String()
	}
	return types, kind
}

// hasFold reports whether list holds v, ignoring case (ids and keywords).
func hasFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
}

// firstShared returns the first id of a that b holds too.
func firstShared(a, b []string) (string, bool) {
	for _, x := range a {
		if hasFold(b, x) {
			return x, true
		}
	}
	return "", false
}

func named(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return fmt.Sprintf("%q (%s)", n, id)
	}
	return id
}

// isGuest: a user whose userType is Guest: a B2B collaboration guest, or a
// "local guest user" of the home tenant (concept-conditional-access-users-
// groups). Without the account's external identities c2bot cannot tell the
// two apart, so a policy naming either covers it.
func (p CAPrincipal) isGuest() bool { return strings.EqualFold(p.UserType, "guest") }

// guestTypesCover reports whether the guestOrExternalUserTypes cover the
// guest: userType Guest is a B2B collaboration guest or an internal guest.
func guestTypesCover(types []string) bool {
	return hasFold(types, "b2bCollaborationGuest") || hasFold(types, "internalGuest")
}

// isWorkloadPolicy: the policy targets service principals
// (conditions.clientApplications) rather than users.
func (p caPolicy) isWorkloadPolicy() bool { return len(p.IncludeServicePrincipals) > 0 }

// EvaluateCAPolicy evaluates policy p for who signing in as si, as Entra
// does. It is pure: it does no I/O.
func EvaluateCAPolicy(p caPolicy, who CAPrincipal, si CASignIn) CAVerdict {
	v := CAVerdict{
		PolicyID: p.ID, PolicyName: p.Name, State: p.State,
		Application: si.Application, ClientAppType: si.ClientAppType,
		// report-only: evaluated and logged, never enforced
		// (concept-conditional-access-report-only).
		ReportOnly: p.State == caStateReportOnly,
		// managed-policies: name prefix, see microsoftManagedPrefix.
		MicrosoftManaged: strings.HasPrefix(p.Name, microsoftManagedPrefix),
	}
	v.Controls, v.GrantDefeats = grantDefeats(p, si)
	v.Applies, v.Conditions, v.Reasons = applies(p, who, si)
	v.LocalApplies = v.Applies
	if v.GrantDefeats && v.Applies != CAAppliesNo {
		v.Reasons = append(v.Reasons, defeatReason(si, v.Controls))
	}
	v.Blocks = v.Applies == CAAppliesYes && v.GrantDefeats && p.State == caStateEnabled
	if v.MicrosoftManaged && v.ReportOnly && !p.Created.IsZero() {
		v.ManagedOnFrom = p.Created.Add(managedOnAfter).UTC()
	}
	switch {
	case v.ReportOnly && v.MicrosoftManaged && v.GrantDefeats && v.Applies != CAAppliesNo:
		when := "no less than 45 days after it appeared"
		if !v.ManagedOnFrom.IsZero() {
			when += " (from " + v.ManagedOnFrom.Format(time.DateOnly) + ")"
		}
		v.Reasons = append(v.Reasons, "report-only today, but Microsoft-managed: Microsoft turns it on "+when+" unless an admin sets it to Off")
	case v.ReportOnly && v.GrantDefeats && v.Applies != CAAppliesNo:
		v.Reasons = append(v.Reasons, "report-only: it would block, but is not enforced")
	}
	return v
}

// applies decides the assignments and conditions.
func applies(p caPolicy, who CAPrincipal, si CASignIn) (CAApplies, []string, []string) {
	if p.State == caStateDisabled {
		return CAAppliesNo, nil, []string{"the policy is off (disabled)"}
	}
	var reasons []string
	ok, why := identityMatches(p, who)
	reasons = append(reasons, why)
	if !ok {
		return CAAppliesNo, nil, reasons
	}
	var conds []string
	if who.MembershipError != "" && who.Kind != CAPrincipalServicePrincipal {
		if len(p.IncludeGroups)+len(p.ExcludeGroups) > 0 {
			conds = append(conds, "groups")
		}
		if len(p.IncludeRoles)+len(p.ExcludeRoles) > 0 {
			conds = append(conds, "roles")
		}
		if len(conds) > 0 {
			reasons = append(reasons, "depends on the account's groups or roles, which could not be read: "+who.MembershipError)
		}
	}
	ok, why = applicationMatches(p, si.Application)
	reasons = append(reasons, why)
	if !ok {
		return CAAppliesNo, nil, reasons
	}
	if who.Kind != CAPrincipalServicePrincipal {
		ok, why = clientAppMatches(p, si.ClientAppType)
		reasons = append(reasons, why)
		if !ok {
			return CAAppliesNo, nil, reasons
		}
	}
	// Authentication flows cover device code flow and authentication
	// transfer only (concept-authentication-flows); the tool signs in with
	// a password or its own credentials, never through them.
	if p.TransferMethods != "" {
		return CAAppliesNo, nil, append(reasons, "targets "+p.TransferMethods+" sign-ins; the tool signs in with a password or its own credentials")
	}
	// Conditions the sign-in alone does not settle: the network location,
	// device platform, risk, device and filters depend on where and how the
	// tool runs (concept-conditional-access-conditions); name them.
	add := func(cond, text string) {
		conds = append(conds, cond)
		reasons = append(reasons, "depends on "+text)
	}
	if len(p.IncludeLocations) > 0 {
		add("locations", "the network location (include "+strings.Join(p.IncludeLocations, ", ")+excludeText(p.ExcludeLocations)+")")
	}
	if len(p.IncludePlatforms) > 0 {
		add("platforms", "the device platform (include "+strings.Join(p.IncludePlatforms, ", ")+excludeText(p.ExcludePlatforms)+")")
	}
	if len(p.SignInRiskLevels) > 0 {
		add("signInRisk", "the sign-in risk ("+strings.Join(p.SignInRiskLevels, ", ")+")")
	}
	if len(p.UserRiskLevels) > 0 {
		add("userRisk", "the user risk ("+strings.Join(p.UserRiskLevels, ", ")+")")
	}
	if len(p.ServicePrincipalRiskLevels) > 0 {
		add("servicePrincipalRisk", "the service principal risk ("+strings.Join(p.ServicePrincipalRiskLevels, ", ")+")")
	}
	if p.InsiderRiskLevels != "" {
		add("insiderRisk", "the insider risk ("+p.InsiderRiskLevels+")")
	}
	if p.DeviceFilter != "" {
		add("deviceFilter", "the device filter ("+p.DeviceFilter+")")
	}
	if p.ApplicationFilter != "" {
		add("applicationFilter", "the application filter ("+p.ApplicationFilter+")")
	}
	if p.ServicePrincipalFilter != "" && who.Kind == CAPrincipalServicePrincipal {
		add("servicePrincipalFilter", "the service principal filter ("+p.ServicePrincipalFilter+")")
	}
	if who.isGuest() && p.IncludeGuestTenants == "enumerated" && guestTypesCover(p.IncludeGuestTypes) {
		add("externalTenants", "the guest's home tenant (the policy names some external tenants)")
	}
	if len(conds) > 0 {
		return CAAppliesMaybe, conds, reasons
	}
	return CAAppliesYes, nil, reasons
}

func excludeText(ex []string) string {
	if len(ex) == 0 {
		return ""
	}
	return "; exclude " + strings.Join(ex, ", ")
}

// identityMatches applies "Users, agents or workload identities".
func identityMatches(p caPolicy, who CAPrincipal) (bool, string) {
	if who.Kind == CAPrincipalServicePrincipal {
		return servicePrincipalMatches(p, who)
	}
	// A policy assigned to workload identities does not cover users, and a
	// user policy does not cover service principals (workload-identity:
	// "What does this policy apply to? ... Workload identities").
	if p.isWorkloadPolicy() {
		return false, "assigned to workload identities, not users"
	}
	// Exclusions win over inclusions (concept-conditional-access-users-groups:
	// "The exclude action overrides the include action in policy"); "Policy
	// is applied to nested users and groups", so group membership is
	// transitive; roles are the built-in directory roles the account is
	// actively assigned. "All users" includes B2B guests.
	if hasFold(p.ExcludeUsers, who.ID) {
		return false, "excludes the account " + accountName(who)
	}
	if who.isGuest() && hasFold(p.ExcludeUsers, caGuestsOrExternalUsers) {
		return false, "excludes guests and external users; the account is a guest"
	}
	if who.isGuest() && guestTypesCover(p.ExcludeGuestTypes) && p.ExcludeGuestTenants != "enumerated" {
		return false, "excludes guests (" + strings.Join(p.ExcludeGuestTypes, ", ") + "); the account is a guest"
	}
	if g, ok := firstShared(who.GroupIDs, p.ExcludeGroups); ok {
		return false, "excludes group " + named(who.GroupNames, g) + ", of which the account is a member"
	}
	if r, ok := firstShared(who.RoleTemplateIDs, p.ExcludeRoles); ok {
		return false, "excludes role " + named(who.RoleNames, r) + ", which the account holds"
	}
	switch {
	case hasFold(p.IncludeUsers, caAll):
		return true, "includes all users"
	case hasFold(p.IncludeUsers, who.ID):
		return true, "includes the account " + accountName(who)
	case who.isGuest() && hasFold(p.IncludeUsers, caGuestsOrExternalUsers):
		return true, "includes guests and external users; the account is a guest"
	case who.isGuest() && guestTypesCover(p.IncludeGuestTypes):
		return true, "includes guests (" + strings.Join(p.IncludeGuestTypes, ", ") + "); the account is a guest"
	}
	if g, ok := firstShared(who.GroupIDs, p.IncludeGroups); ok {
		return true, "includes group " + named(who.GroupNames, g) + ", of which the account is a member (directly or through a nested group)"
	}
	if r, ok := firstShared(who.RoleTemplateIDs, p.IncludeRoles); ok {
		return true, "includes role " + named(who.RoleNames, r) + ", which the account holds"
	}
	if who.MembershipError != "" && len(p.IncludeGroups)+len(p.IncludeRoles) > 0 {
		return true, "includes groups or roles the account may belong to"
	}
	return false, "does not include the account " + accountName(who)
}

func accountName(who CAPrincipal) string {
	if who.UserPrincipalName != "" {
		return who.UserPrincipalName
	}
	if who.DisplayName != "" {
		return who.DisplayName
	}
	return who.ID
}

// servicePrincipalMatches applies conditions.clientApplications
// (workload-identity): ServicePrincipalsInMyTenant or the service
// principal's object id; exclusions win; only single-tenant service
// principals registered in the tenant are in scope.
func servicePrincipalMatches(p caPolicy, who CAPrincipal) (bool, string) {
	if !p.isWorkloadPolicy() {
		return false, "assigned to users, not workload identities"
	}
	if who.ForeignApp {
		return false, "workload-identity policies cover only single-tenant service principals; the tool's app is registered in another tenant"
	}
	if hasFold(p.ExcludeServicePrincipals, who.ID) {
		return false, "excludes the service principal " + accountName(who)
	}
	switch {
	case hasFold(p.IncludeServicePrincipals, caSPsInMyTenant):
		return true, "includes all service principals in the tenant"
	case hasFold(p.IncludeServicePrincipals, who.ID):
		return true, "includes the service principal " + accountName(who)
	}
	return false, "does not include the service principal " + accountName(who)
}

// applicationMatches applies "Target resources" (concept-conditional-access-
// cloud-apps): All, Office365 (which covers Exchange Online and SharePoint
// Online), or app ids; excluded apps win. A policy that targets only user
// actions or authentication contexts does not apply to an app sign-in.
func applicationMatches(p caPolicy, app string) (bool, string) {
	covers := func(list []string) (string, bool) {
		switch {
		case hasFold(list, caAll):
			return "all resources", true
		case hasFold(list, caOffice365) && hasFold(office365Apps, app):
			return "Office 365", true
		case hasFold(list, app):
			return appName(app), true
		}
		return "", false
	}
	if what, ok := covers(p.ExcludeApplications); ok && what != "all resources" {
		return false, "excludes " + what + " (" + appName(app) + ")"
	}
	if what, ok := covers(p.IncludeApplications); ok {
		return true, "targets " + what
	}
	if len(p.IncludeApplications) == 0 && (len(p.IncludeUserActions) > 0 || len(p.IncludeAuthContexts) > 0) {
		return false, "targets user actions or authentication contexts, not " + appName(app)
	}
	return false, "does not target " + appName(app)
}

func appName(app string) string {
	switch strings.ToLower(app) {
	case AppExchangeOnline:
		return "Exchange Online"
	case AppSharePointOnline:
		return "SharePoint Online"
	}
	return app
}

// clientAppMatches applies "Client apps" (concept-conditional-access-
// conditions): not configured or "all" covers every client; legacy clients
// are exchangeActiveSync and other; easSupported is the older name for
// Exchange ActiveSync.
func clientAppMatches(p caPolicy, client string) (bool, string) {
	if len(p.ClientAppTypes) == 0 || hasFold(p.ClientAppTypes, "all") {
		return true, "covers every client app type"
	}
	if hasFold(p.ClientAppTypes, client) || client == ClientAppExchangeActiveSync && hasFold(p.ClientAppTypes, "easSupported") {
		return true, "covers " + client + " clients"
	}
	return false, "covers " + strings.Join(p.ClientAppTypes, ", ") + " clients only, not " + clientName(client)
}

func clientName(c string) string {
	if c == "" {
		return "an app signing in with its own credentials"
	}
	return c
}

// grantDefeats lists the grant controls the sign-in cannot satisfy and says
// whether the grant as a whole defeats it.
//
//   - Block defeats everyone (concept-conditional-access-grant).
//   - A legacy client cannot satisfy any grant control: MFA, compliant or
//     hybrid-joined device, approved app, app protection, terms of use,
//     password change, authentication strength all block it like Block
//     (concept-conditional-access-conditions, "Exchange ActiveSync clients":
//     "In the case that Multifactor authentication, Terms of use, or custom
//     controls are required, affected users are blocked, because basic
//     authentication doesn't support these controls"; block-legacy-
//     authentication: "legacy authentication clients don't support sending
//     MFA, device compliance, or join state information", and "You can
//     select all available grant controls for the Other clients condition;
//     however, the end-user experience is always the same - blocked access").
//   - A delegated tool signing in non-interactively with a password (the
//     resource owner password credentials grant) cannot answer MFA or an
//     authentication strength ("If users need to use multifactor
//     authentication (MFA) to log in to the application, they will be
//     blocked instead", https://learn.microsoft.com/entra/identity-platform/v2-oauth-ropc),
//     nor accept terms of use, change a password, present a device identity
//     (compliant or hybrid joined) or be an approved/app-protected Microsoft
//     client app.
//   - A service principal cannot perform MFA; Block is the only grant a
//     workload-identity policy offers (workload-identity).
//
// With operator OR the grant defeats the sign-in only when every listed
// control does; with AND, when any does (concept-conditional-access-grant,
// "Multiple controls"). A policy without grant controls (session only)
// defeats nothing.
func grantDefeats(p caPolicy, si CASignIn) ([]string, bool) {
	var all []string
	all = append(all, p.BuiltInControls...)
	if p.AuthStrength != "" {
		all = append(all, "authenticationStrength")
	}
	if len(p.TermsOfUse) > 0 {
		all = append(all, "termsOfUse")
	}
	if len(p.CustomAuthenticationFactors) > 0 {
		all = append(all, "customAuthenticationFactors")
	}
	if len(all) == 0 {
		return nil, false
	}
	var defeating []string
	for _, c := range all {
		if !controlSatisfiable(c, si.Auth) {
			defeating = append(defeating, c)
		}
	}
	if hasFold(all, "block") {
		return []string{"block"}, true
	}
	if strings.EqualFold(p.GrantOperator, "AND") {
		return defeating, len(defeating) > 0
	}
	if len(defeating) == len(all) {
		return defeating, true
	}
	return nil, false
}

// unsatisfiableControls are the documented grant controls no tool profile
// can satisfy (see grantDefeats). A control not listed (a value Graph adds
// later) is taken as one the tool might satisfy, so an OR grant holding it
// is not reported as defeating.
var unsatisfiableControls = []string{
	"block", "mfa", "compliantDevice", "domainJoinedDevice", "approvedApplication",
	"compliantApplication", "passwordChange", "authenticationStrength", "termsOfUse",
	"customAuthenticationFactors",
}

func controlSatisfiable(control, auth string) bool {
	switch auth {
	case AuthLegacy, AuthDelegated, AuthApp:
		return !hasFold(unsatisfiableControls, control)
	}
	return true
}

func defeatReason(si CASignIn, controls []string) string {
	list := strings.Join(controls, ", ")
	switch si.Auth {
	case AuthLegacy:
		return "requires " + list + ", which a legacy client cannot satisfy: it blocks legacy sign-ins like Block"
	case AuthDelegated:
		return "requires " + list + ", which a tool signing in non-interactively with a password cannot satisfy"
	case AuthApp:
		return "requires " + list + ": the service principal is refused"
	}
	return "requires " + list
}
