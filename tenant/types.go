package tenant

import (
	"fmt"
	"time"
)

// Severity grades a finding.
type Severity int

// Severities, from least to most serious. A Blocker is something that makes
// the tool's legacy sign-ins fail.
const (
	SeverityOK Severity = iota + 1
	SeverityInfo
	SeverityWarning
	SeverityBlocker
)

// String returns "ok", "info", "warning" or "blocker".
func (s Severity) String() string {
	switch s {
	case SeverityOK:
		return "ok"
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityBlocker:
		return "blocker"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText makes severities readable in JSON output.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Kind names a setting c2bot knows how to change and put back.
type Kind string

// The changeable settings.
const (
	// KindSecurityDefaults is identitySecurityDefaultsEnforcementPolicy.isEnabled.
	KindSecurityDefaults Kind = "security_defaults"
	// KindSharePointLegacyAuth is sharepointSettings.isLegacyAuthProtocolsEnabled.
	KindSharePointLegacyAuth Kind = "sharepoint_legacy_auth"
	// KindSharePointInvitedMatch is
	// sharepointSettings.isRequireAcceptingUserToMatchInvitedUserEnabled.
	KindSharePointInvitedMatch Kind = "sharepoint_invited_match"
	// KindCAExcludeUser is the tool's account in a Conditional Access
	// policy's conditions.users.excludeUsers (the scoped alternative).
	KindCAExcludeUser Kind = "ca_exclude_user"
)

// Values an Item holds. Boolean settings use "true"/"false"; the Conditional
// Access exclusion uses "excluded"/"included".
const (
	ValueTrue     = "true"
	ValueFalse    = "false"
	ValueExcluded = "excluded"
	ValueIncluded = "included"
)

// Item is one setting in a change plan. It is plain data, stored with the
// request, so a restarted process can still restore it.
type Item struct {
	Kind Kind `json:"kind"`
	// PolicyID and PolicyName identify the Conditional Access policy
	// (KindCAExcludeUser only).
	PolicyID   string `json:"policy_id,omitempty"`
	PolicyName string `json:"policy_name,omitempty"`
	// UserID and UserPrincipalName identify the tool's account
	// (KindCAExcludeUser only).
	UserID            string `json:"user_id,omitempty"`
	UserPrincipalName string `json:"user_principal_name,omitempty"`
	// Before is the value found in the tenant (the snapshot); After is the
	// value c2bot sets. Restore puts Before back only while After still holds.
	Before string `json:"before"`
	After  string `json:"after"`
	// MissingPermission names the application permission c2bot's app lacks
	// to make this change, as Diagnose found it; empty when it has it.
	MissingPermission string `json:"missing_permission,omitempty"`
}

// Setting names the setting for people: "Security defaults",
// "SharePoint legacy auth protocols", …
func (i Item) Setting() string {
	switch i.Kind {
	case KindSecurityDefaults:
		return "Entra ID Security defaults (isEnabled)"
	case KindSharePointLegacyAuth:
		return "SharePoint legacy auth protocols (isLegacyAuthProtocolsEnabled)"
	case KindSharePointInvitedMatch:
		return "SharePoint invited-account match (isRequireAcceptingUserToMatchInvitedUserEnabled)"
	case KindCAExcludeUser:
		return fmt.Sprintf("Conditional Access %q: exclude %s", i.PolicyName, i.UserPrincipalName)
	}
	return string(i.Kind)
}

// String is "setting: before → after".
func (i Item) String() string {
	return fmt.Sprintf("%s: %s → %s", i.Setting(), i.Before, i.After)
}

// Outcome is what Restore did to one item.
type Outcome string

// Restore outcomes.
const (
	// Restored: the item still held After and now holds Before again.
	Restored Outcome = "restored"
	// AlreadyOriginal: the item already holds Before (an earlier attempt, or
	// someone changed it back during the window); nothing was written.
	AlreadyOriginal Outcome = "already_original"
	// Drifted: the item holds neither After nor Before; it was left alone.
	Drifted Outcome = "drifted"
)

// RestoreResult reports Restore for one item.
type RestoreResult struct {
	Outcome Outcome `json:"outcome"`
	// Current is the value read before deciding (and after writing, for Restored).
	Current string `json:"current"`
}

// Target says what to diagnose for: the tool's account and version.
type Target struct {
	// Account is the user principal name the backup or migration tool signs
	// in with; sign-in and Conditional Access checks use it when set.
	Account string
	// Product is "backup" or "migration"; Version is "X.Y". Both optional.
	Product string
	Version string
	// Since is how far back to read sign-ins; zero means 24 hours.
	Since time.Duration
}

// Evidence is one observed fact behind a finding.
type Evidence struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Finding is the result of one check.
type Finding struct {
	// Check is a stable id: "security_defaults", "sharepoint_legacy_auth",
	// "sharepoint_invited_match", "conditional_access", "signins", "version".
	Check    string     `json:"check"`
	Severity Severity   `json:"severity"`
	Title    string     `json:"title"`
	Evidence []Evidence `json:"evidence,omitempty"`
	// Fix says what addresses it, in a sentence; empty when nothing is needed.
	Fix string `json:"fix,omitempty"`
}

// SignInGroup is the tool's sign-ins that failed with one error code.
type SignInGroup struct {
	ErrorCode     int       `json:"error_code"`
	Count         int       `json:"count"`
	FailureReason string    `json:"failure_reason"`
	Explanation   string    `json:"explanation"`
	ClientApps    []string  `json:"client_apps,omitempty"`
	CAStatus      string    `json:"conditional_access_status,omitempty"`
	LastSeen      time.Time `json:"last_seen"`
}

// SignInSummary is what the sign-in log says about the tool's account.
type SignInSummary struct {
	Account   string    `json:"account"`
	Since     time.Time `json:"since"`
	Total     int       `json:"total"`
	Succeeded int       `json:"succeeded"`
	// FirstSucceeded and LastSucceeded are the times of the oldest and the
	// newest successful sign-in read; zero when none succeeded.
	FirstSucceeded time.Time     `json:"first_succeeded,omitempty"`
	LastSucceeded  time.Time     `json:"last_succeeded,omitempty"`
	Failed         []SignInGroup `json:"failed,omitempty"`
	// Unavailable explains why the log could not be read (403, no P1
	// licence); the summary is then empty and this is a finding, not an error.
	Unavailable string `json:"unavailable,omitempty"`
}

// Report is the outcome of Diagnose.
type Report struct {
	TenantID  string        `json:"tenant_id"`
	CheckedAt time.Time     `json:"checked_at"`
	Findings  []Finding     `json:"findings"`
	SignIns   SignInSummary `json:"signins"`
	// Plan is the change that would unblock the tool: Before holds the
	// current value, After the one to set. Empty when nothing blocks.
	Plan []Item `json:"plan,omitempty"`
}

// Blocked reports whether any finding is a blocker.
func (r Report) Blocked() bool {
	for _, f := range r.Findings {
		if f.Severity == SeverityBlocker {
			return true
		}
	}
	return false
}
