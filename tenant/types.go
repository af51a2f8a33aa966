package tenant

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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
	// KindCAExcludeServicePrincipal is the tool's service principal in a
	// Conditional Access policy's
	// conditions.clientApplications.excludeServicePrincipals (the scoped
	// alternative for an app tool blocked by a workload-identity policy).
	KindCAExcludeServicePrincipal Kind = "ca_exclude_service_principal"
)

// Kinds lists every kind c2bot can change, in plan order.
func Kinds() []Kind {
	return []Kind{KindSecurityDefaults, KindSharePointLegacyAuth, KindSharePointInvitedMatch,
		KindCAExcludeUser, KindCAExcludeServicePrincipal}
}

// Propagation is the documented time a change of this kind can take to
// reach sign-ins (see facts.go).
func (k Kind) Propagation() time.Duration {
	switch k {
	case KindSecurityDefaults:
		return PropagationSecurityDefaults
	case KindSharePointLegacyAuth, KindSharePointInvitedMatch:
		return PropagationSharePoint
	case KindCAExcludeUser, KindCAExcludeServicePrincipal:
		return PropagationConditionalAccess
	}
	return 0
}

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
	// ServicePrincipalID and AppID identify the tool's service principal
	// (KindCAExcludeServicePrincipal only).
	ServicePrincipalID string `json:"service_principal_id,omitempty"`
	AppID              string `json:"app_id,omitempty"`
	// Before is the value found in the tenant (the snapshot); After is the
	// value c2bot sets. Restore puts Before back only while After still holds.
	Before string `json:"before"`
	After  string `json:"after"`
	// Propagation is how long Microsoft documents the change can take to
	// reach sign-ins. In JSON it is whole seconds ("propagation": 86400).
	Propagation time.Duration `json:"-"`
	// MissingPermission names the application permission c2bot's app lacks
	// to make this change, as Diagnose found it; empty when it has it.
	MissingPermission string `json:"missing_permission,omitempty"`
}

// itemJSON is Item's wire form: Propagation in whole seconds.
type itemJSON struct {
	itemFields
	Propagation int64 `json:"propagation,omitempty"`
}

// itemFields is Item without its methods, so encoding/json does not recurse.
type itemFields Item

// MarshalJSON writes Propagation as whole seconds.
func (i Item) MarshalJSON() ([]byte, error) {
	return json.Marshal(itemJSON{itemFields: itemFields(i), Propagation: int64(i.Propagation / time.Second)})
}

// UnmarshalJSON reads Propagation as whole seconds (absent: zero).
func (i *Item) UnmarshalJSON(b []byte) error {
	var v itemJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*i = Item(v.itemFields)
	i.Propagation = time.Duration(v.Propagation) * time.Second
	return nil
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
	case KindCAExcludeServicePrincipal:
		who := i.AppID
		if who == "" {
			who = i.ServicePrincipalID
		}
		return fmt.Sprintf("Conditional Access %q: exclude service principal %s", i.PolicyName, who)
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
	// Auth is how the tool signs in: AuthLegacy, AuthDelegated or AuthApp;
	// empty means infer it from the tool's sign-ins.
	Auth string
	// AppID is the tool's own app registration (application id), for an
	// app tool; with Auth empty, its service-principal sign-ins are read.
	AppID string
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
	// PolicyID is the Conditional Access policy involved, when there is one.
	PolicyID string `json:"policy_id,omitempty"`
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
	// ExplainedBy names what explains these failures: finding check ids
	// ("security_defaults", "sharepoint_idcrl", …) and Conditional Access
	// policy ids (from appliedConditionalAccessPolicies or the evaluation).
	ExplainedBy []string `json:"explained_by,omitempty"`
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
	// clientApps counts clientAppUsed over every entry read (profile
	// inference).
	clientApps map[string]int
}

// Profile is the tool a report was made for.
type Profile struct {
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	// Auth is AuthLegacy, AuthDelegated or AuthApp.
	Auth  string `json:"auth"`
	AppID string `json:"app_id,omitempty"`
	// Inferred is set when Auth was not configured; InferredFrom says from
	// what ("12 sign-ins with clientAppUsed Exchange ActiveSync, …").
	Inferred     bool   `json:"inferred"`
	InferredFrom string `json:"inferred_from,omitempty"`
}

// Report is the outcome of Diagnose.
type Report struct {
	TenantID  string    `json:"tenant_id"`
	CheckedAt time.Time `json:"checked_at"`
	Profile   Profile   `json:"profile"`
	// Platform is every platform fact as it stands at CheckedAt: which of
	// the tool's sign-in paths still exist today.
	Platform []PlatformFact `json:"platform"`
	Findings []Finding      `json:"findings"`
	SignIns  SignInSummary  `json:"signins"`
	// Plan is the change that would unblock the tool: Before holds the
	// current value, After the one to set. Empty when nothing blocks or when
	// no change can help (then NoFix says why).
	Plan []Item `json:"plan,omitempty"`
	// NoFix says why no change can help when the tool is blocked and Plan
	// is empty ("update the tool …").
	NoFix string `json:"no_fix,omitempty"`
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

// PlanOnly returns the plan items of the given kinds, in plan order (all of
// them when kinds is empty), for `fix --only`. It fails, wrapping
// ErrInvalidItem, for a kind c2bot does not know (naming the valid ones) or
// one the plan has no item of.
func (r Report) PlanOnly(kinds []Kind) ([]Item, error) {
	if len(kinds) == 0 {
		return append([]Item(nil), r.Plan...), nil
	}
	valid := Kinds()
	want := map[Kind]bool{}
	for _, k := range kinds {
		if !slices.Contains(valid, k) {
			return nil, fmt.Errorf("%w: unknown kind %q (valid: %s)", ErrInvalidItem, k, joinKinds(valid))
		}
		want[k] = true
	}
	var out []Item
	have := map[Kind]bool{}
	for _, it := range r.Plan {
		have[it.Kind] = true
		if want[it.Kind] {
			out = append(out, it)
		}
	}
	for _, k := range kinds {
		if !have[k] {
			var in []Kind
			for _, it := range r.Plan {
				if !slices.Contains(in, it.Kind) {
					in = append(in, it.Kind)
				}
			}
			if len(in) == 0 {
				return nil, fmt.Errorf("%w: the plan has no %s item (the plan is empty)", ErrInvalidItem, k)
			}
			return nil, fmt.Errorf("%w: the plan has no %s item (it has: %s)", ErrInvalidItem, k, joinKinds(in))
		}
	}
	return out, nil
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
