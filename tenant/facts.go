package tenant

import (
	"encoding/json"
	"time"
)

// Platform facts: what Microsoft changed, as dated data evaluated against the
// client's clock, so every finding is right on the day it runs and tests can
// run it on any date. The checks read these (through factState and the date
// constants below) instead of hard-coding what is true "now".

// Fact ids.
const (
	FactExchangeBasicAuth = "exchange_basic_auth"
	FactSharePointIDCRL   = "sharepoint_idcrl"
	FactSharePointInvited = "sharepoint_invited_match"
	FactSecurityDefaults  = "security_defaults"
	FactCALegacyClients   = "ca_legacy_clients"
	FactCAManagedPolicies = "ca_managed_policies"
	FactPropagation       = "propagation"
)

// Fact states.
const (
	// StateAvailable: the path works when the tenant's settings allow it.
	StateAvailable = "available"
	// StatePhasingOut: blocked by default; only a step outside Graph can
	// still re-enable it, for a limited time.
	StatePhasingOut = "phasing_out"
	// StateRetired: permanently off; no tenant setting brings it back.
	StateRetired = "retired"
	// StateDeprecated: the setting exists but no longer does what the
	// vendor's procedure assumed.
	StateDeprecated = "deprecated"
	// StateInEffect: a rule of the platform that holds on every date.
	StateInEffect = "in_effect"
)

// Dates of Microsoft's changes (UTC midnight: the first day the new state
// holds).
var (
	// ExchangeBasicAuthRetired: "Effective October 1, 2022, we began
	// permanently disabling Basic auth" for EWS, EAS, POP, IMAP, Remote
	// PowerShell, MAPI, RPC and OAB in all tenants (SMTP AUTH aside).
	// https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/deprecation-of-basic-authentication-exchange-online
	ExchangeBasicAuthRetired = time.Date(2022, 10, 1, 0, 0, 0, 0, time.UTC)
	// SharePointIDCRLBlocked: MC1184649 (updated 2026-02-05) — "Starting
	// February 16, 2026: Legacy client authentication will be blocked by
	// default. Organizations may temporarily re-enable it using PowerShell
	// until April 30, 2026."
	// https://mc.merill.net/message/MC1184649
	SharePointIDCRLBlocked = time.Date(2026, 2, 16, 0, 0, 0, 0, time.UTC)
	// SharePointIDCRLRetired: MC1184649 — "Starting May 1, 2026: Legacy
	// client authentication will be permanently blocked and cannot be
	// re-enabled."
	SharePointIDCRLRetired = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
)

// Propagation bounds Microsoft documents: Conditional Access changes and
// SharePoint's legacy-auth setting can take up to 24 hours to take effect
// (block-legacy-authentication; Set-SPOTenant LegacyAuthProtocolsEnabled).
const (
	PropagationConditionalAccess = 24 * time.Hour
	PropagationSharePoint        = 24 * time.Hour
	// PropagationSecurityDefaults: Microsoft gives no separate figure for
	// Security defaults; the tenant-wide bound above is used.
	PropagationSecurityDefaults = 24 * time.Hour
)

// Sources cited by the facts and findings.
const (
	SourceExchangeBasicAuth = "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/deprecation-of-basic-authentication-exchange-online"
	// SourceSharePointIDCRL is Microsoft's migration guide for MC1184649
	// (the message itself is at https://mc.merill.net/message/MC1184649).
	SourceSharePointIDCRL = "https://devblogs.microsoft.com/microsoft365dev/migrating-from-idcrl-authentication-to-modern-authentication-in-sharepoint/"
	// SourceSetSPOTenant documents RequireAcceptingAccountMatchInvitedAccount
	// and LegacyAuthProtocolsEnabled; Microsoft365DSC's SPOTenantSettings
	// resource marks the former "DEPRECATED" as well
	// (https://www.powershellgallery.com/packages/Microsoft365DSC, MSFT_SPOTenantSettings.schema.mof).
	SourceSetSPOTenant     = "https://learn.microsoft.com/powershell/module/sharepoint-online/set-spotenant"
	SourceSecurityDefaults = "https://learn.microsoft.com/entra/fundamentals/security-defaults"
	SourceCALegacy         = "https://learn.microsoft.com/entra/identity/conditional-access/block-legacy-authentication"
	SourceCAManaged        = "https://learn.microsoft.com/entra/identity/conditional-access/managed-policies"
	SourceErrorCodes       = "https://learn.microsoft.com/entra/identity-platform/reference-error-codes"
)

// PlatformFact is one of Microsoft's changes as it stands on a given date.
type PlatformFact struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// State is StateAvailable, StatePhasingOut, StateRetired,
	// StateDeprecated or StateInEffect.
	State string `json:"state"`
	// Since is when State began; zero for a fact without a date.
	Since  time.Time `json:"since"`
	Effect string    `json:"effect"`
	Source string    `json:"source"`
}

// MarshalJSON writes Since as null for a fact without a date.
func (f PlatformFact) MarshalJSON() ([]byte, error) {
	type plain PlatformFact
	v := struct {
		plain
		Since *time.Time `json:"since"`
	}{plain: plain(f)}
	if !f.Since.IsZero() {
		v.Since = &f.Since
	}
	return json.Marshal(v)
}

// phase is one dated state of a fact: it holds from From (inclusive) until
// the next phase.
type phase struct {
	From   time.Time
	State  string
	Effect string
}

type factDef struct {
	ID, Title, Source string
	Phases            []phase // oldest first; the first may have a zero From
}

// platformFacts is the table. Keep phases in date order.
var platformFacts = []factDef{
	{
		ID:     FactExchangeBasicAuth,
		Title:  "Exchange Online basic authentication (EWS, EAS, POP, IMAP, RPC, OAB; SMTP AUTH aside)",
		Source: SourceExchangeBasicAuth,
		Phases: []phase{
			{State: StatePhasingOut, Effect: "Microsoft is turning basic authentication off protocol by protocol; a password sign-in over these protocols may still work"},
			{From: ExchangeBasicAuthRetired, State: StateRetired, Effect: "permanently off for every tenant since 2022-10-01: no tenant setting re-enables it, so a tool signing in with basic auth to Exchange Online fails whatever the settings"},
		},
	},
	{
		ID:     FactSharePointIDCRL,
		Title:  "SharePoint Online IDCRL (legacy) authentication, MC1184649",
		Source: SourceSharePointIDCRL,
		Phases: []phase{
			{State: StateAvailable, Effect: "SharePoint accepts IDCRL sign-ins while isLegacyAuthProtocolsEnabled is true (Graph can set it)"},
			{From: SharePointIDCRLBlocked, State: StatePhasingOut, Effect: "blocked by default since 2026-02-16; until 2026-04-30 only PowerShell re-enables it (Set-SPOTenant -AllowLegacyAuthProtocolsEnabledSetting $true, then -LegacyAuthProtocolsEnabled $true); Graph has no AllowLegacyAuthProtocolsEnabledSetting, so isLegacyAuthProtocolsEnabled alone does not bring IDCRL back"},
			{From: SharePointIDCRLRetired, State: StateRetired, Effect: "permanently blocked since 2026-05-01: no setting brings IDCRL sign-ins back"},
		},
	},
	{
		ID:     FactSharePointInvited,
		Title:  "SharePoint RequireAcceptingAccountMatchInvitedAccount",
		Source: SourceSetSPOTenant,
		Phases: []phase{
			{State: StateDeprecated, Effect: "a guest-sharing rule deprecated since SharePoint moved to the Entra B2B invitation flow; relaxing it weakens sharing and does not affect the tool's sign-in"},
		},
	},
	{
		ID:     FactSecurityDefaults,
		Title:  "Entra ID Security defaults",
		Source: SourceSecurityDefaults,
		Phases: []phase{
			{State: StateInEffect, Effect: "block legacy authentication (sign-in error 530035) and require MFA, which a tool signing in as a user with a password cannot do (50076); no effect on an app signing in with its own credentials"},
		},
	},
	{
		ID:     FactCALegacyClients,
		Title:  "Conditional Access and legacy clients",
		Source: SourceCALegacy,
		Phases: []phase{
			{State: StateInEffect, Effect: "legacy clients cannot satisfy any grant control: a policy requiring MFA, a compliant device or an authentication strength blocks them like block; nested groups and role holders are in scope; exclusions win; report-only never blocks"},
		},
	},
	{
		ID:     FactCAManagedPolicies,
		Title:  "Microsoft-managed Conditional Access policies",
		Source: SourceCAManaged,
		Phases: []phase{
			{State: StateInEffect, Effect: "created in report-only and switched on by Microsoft at least 45 days later unless an admin decides otherwise"},
		},
	},
	{
		ID:    FactPropagation,
		Title: "Propagation of tenant changes",
		// Also Set-SPOTenant (SourceSetSPOTenant) for SharePoint's setting.
		Source: SourceCALegacy,
		Phases: []phase{
			{State: StateInEffect, Effect: "Conditional Access changes and SharePoint's legacy-auth setting can take up to 24 hours to take effect"},
		},
	},
}

// PlatformFacts returns every platform fact in the state it has at now.
func PlatformFacts(now time.Time) []PlatformFact {
	out := make([]PlatformFact, 0, len(platformFacts))
	for _, d := range platformFacts {
		ph := d.at(now)
		out = append(out, PlatformFact{ID: d.ID, Title: d.Title, State: ph.State, Since: ph.From, Effect: ph.Effect, Source: d.Source})
	}
	return out
}

// at returns the phase in force at now.
func (d factDef) at(now time.Time) phase {
	cur := d.Phases[0]
	for _, ph := range d.Phases[1:] {
		if !now.Before(ph.From) {
			cur = ph
		}
	}
	return cur
}

// factState returns the state of fact id at now ("" for an unknown id).
func factState(id string, now time.Time) string {
	for _, d := range platformFacts {
		if d.ID == id {
			return d.at(now).State
		}
	}
	return ""
}
