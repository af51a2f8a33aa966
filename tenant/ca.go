package tenant

// CAPrincipal is the identity a Conditional Access policy is evaluated for:
// the tool's user account or its service principal.
type CAPrincipal struct {
	// Kind is CAPrincipalUser or CAPrincipalServicePrincipal.
	Kind string
	// ID is the object id.
	ID                string
	UserPrincipalName string
	// UserType is "member" or "guest" (users only).
	UserType string
	// AppID is the application id (service principals only).
	AppID string
	// DisplayName is for people.
	DisplayName string
	// GroupIDs are the transitive group memberships.
	GroupIDs []string
	// RoleTemplateIDs are the directory roles held (roleTemplateId).
	RoleTemplateIDs []string
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
	// "mobileAppsAndDesktopClients".
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
	// Application is the sign-in's resource app id, ClientAppType its client
	// app type (a verdict is for one CASignIn).
	Application, ClientAppType string
	Applies                    CAApplies
	// Blocks: the policy applies (or may) and the sign-in cannot satisfy
	// its grant for this Auth; never set for report-only policies.
	Blocks bool
	// Controls are the grant controls that defeat the tool.
	Controls []string
	// Conditions are the unresolved conditions behind may_apply:
	// "locations", "platforms", "signInRisk", ...
	Conditions []string
	// Reasons say, for people, why it applies or not.
	Reasons []string
	// ReportOnly: state enabledForReportingButNotEnforced; never blocks today.
	ReportOnly bool
	// MicrosoftManaged: a Microsoft-managed policy (Microsoft switches it on
	// at least 45 days after it appears in report-only).
	MicrosoftManaged bool
}

// CAEvaluation is the Conditional Access verdicts for the tool's sign-ins.
type CAEvaluation struct {
	// Source is CASourceWhatIf (Entra's own answer) or CASourceLocal.
	Source string
	// WhatIfError says why What If was not used, when Source is local.
	WhatIfError string
	// Verdicts hold one per policy that is not disabled and sign-in; the
	// local evidence is always filled.
	Verdicts []CAVerdict
}

// Evaluation sources.
const (
	CASourceWhatIf = "whatif"
	CASourceLocal  = "local"
)

// EvaluateCAPolicy evaluates policy p for who signing in as si, as Entra
// does. It is pure: it does no I/O.
func EvaluateCAPolicy(p caPolicy, who CAPrincipal, si CASignIn) CAVerdict {
	return CAVerdict{PolicyID: p.ID, PolicyName: p.Name, State: p.State,
		Application: si.Application, ClientAppType: si.ClientAppType, Applies: CAAppliesNo}
}
