package tenant

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// CheckPermissions is the Finding.Check of a change c2bot could not make for
// want of an application permission.
const CheckPermissions = "permissions"

// Access is what a feature does with Graph: read or write.
type Access string

// Accesses.
const (
	Read  Access = "read"
	Write Access = "write"
)

// Need is one application permission a feature needs: any one of AnyOf
// grants it. A feature that needs two permissions has two Needs.
type Need struct {
	Feature string
	Access  Access
	AnyOf   []string
	// Doc is the Microsoft Graph reference page that lists the permission.
	Doc string
}

// String is "Policy.ReadWrite.SecurityDefaults (or Policy.ReadWrite.ConditionalAccess)".
func (n Need) String() string {
	if len(n.AnyOf) == 1 {
		return n.AnyOf[0]
	}
	return n.AnyOf[0] + " (or " + strings.Join(n.AnyOf[1:], " or ") + ")"
}

// Features, as Permissions names them.
const (
	FeatureSecurityDefaults   = "Security defaults"
	FeatureSharePoint         = "SharePoint settings"
	FeatureConditionalAccess  = "Conditional Access policies"
	FeatureCAExclusion        = "Conditional Access exclusion of the tool's account"
	FeatureSignIns            = "the tool's sign-ins"
	FeatureToolAccount        = "the tool's account"
	FeatureWhatIf             = "Entra's What If verdict"
	FeatureMemberships        = "the tool account's groups and roles"
	FeatureServicePrincipal   = "an app tool's service principal"
	docWhatIf                 = "https://learn.microsoft.com/en-us/graph/api/conditionalaccessroot-evaluate"
	docTransitiveMemberOf     = "https://learn.microsoft.com/en-us/graph/api/user-list-transitivememberof"
	docServicePrincipalGet    = "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get"
	docSecurityDefaultsGet    = "https://learn.microsoft.com/en-us/graph/api/identitysecuritydefaultsenforcementpolicy-get"
	docSecurityDefaultsUpdate = "https://learn.microsoft.com/en-us/graph/api/identitysecuritydefaultsenforcementpolicy-update"
	docSharePointGet          = "https://learn.microsoft.com/en-us/graph/api/sharepointsettings-get"
	docSharePointUpdate       = "https://learn.microsoft.com/en-us/graph/api/sharepointsettings-update"
	docCAList                 = "https://learn.microsoft.com/en-us/graph/api/conditionalaccessroot-list-policies"
	docCAUpdate               = "https://learn.microsoft.com/en-us/graph/api/conditionalaccesspolicy-update"
	docSignInList             = "https://learn.microsoft.com/en-us/graph/api/signin-list"
	docUserGet                = "https://learn.microsoft.com/en-us/graph/api/user-get"
)

// Permissions is every application permission c2bot needs, per feature,
// reads and writes: the one table that doctor checks the token against and
// that an app registration should be granted. Sources: the Graph API
// reference page of each call (Doc). The Security defaults update page lists
// Policy.Read.All as "least privileged" even for the PATCH; a write is only
// counted as granted with one of its ReadWrite permissions.
var Permissions = []Need{
	{FeatureSecurityDefaults, Read, []string{"Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"}, docSecurityDefaultsGet},
	{FeatureSecurityDefaults, Write, []string{"Policy.ReadWrite.SecurityDefaults", "Policy.ReadWrite.ConditionalAccess"}, docSecurityDefaultsUpdate},
	{FeatureSharePoint, Read, []string{"SharePointTenantSettings.Read.All", "SharePointTenantSettings.ReadWrite.All"}, docSharePointGet},
	{FeatureSharePoint, Write, []string{"SharePointTenantSettings.ReadWrite.All"}, docSharePointUpdate},
	{FeatureConditionalAccess, Read, []string{"Policy.Read.All"}, docCAList},
	// Least privileged: Policy.Read.All and Policy.ReadWrite.ConditionalAccess;
	// the page's higher-privileged pair has Application.Read.All instead.
	{FeatureCAExclusion, Write, []string{"Policy.Read.All", "Application.Read.All"}, docCAUpdate},
	{FeatureCAExclusion, Write, []string{"Policy.ReadWrite.ConditionalAccess"}, docCAUpdate},
	{FeatureSignIns, Read, []string{"AuditLog.Read.All"}, docSignInList},
	{FeatureSignIns, Read, []string{"Directory.Read.All"}, docSignInList},
	{FeatureToolAccount, Read, []string{"User.Read.All", "Directory.Read.All"}, docUserGet},
	// What If reads the policies like the list does; without it c2bot
	// evaluates locally and says so.
	{FeatureWhatIf, Read, []string{"Policy.Read.All", "Policy.Read.ConditionalAccess"}, docWhatIf},
	{FeatureMemberships, Read, []string{"GroupMember.Read.All", "Directory.Read.All"}, docTransitiveMemberOf},
	{FeatureServicePrincipal, Read, []string{"Application.Read.All", "Directory.Read.All"}, docServicePrincipalGet},
}

// (Verified on the v1.0 pages above: the SharePoint update needs
// SharePointTenantSettings.ReadWrite.All only; List signIns needs
// AuditLog.Read.All and Directory.Read.All.)

// RequiredPermissions lists each permission of Permissions once (the first
// of each AnyOf), in table order: what to grant an app registration.
func RequiredPermissions() []string {
	var out []string
	for _, n := range Permissions {
		if !slices.Contains(out, n.AnyOf[0]) {
			out = append(out, n.AnyOf[0])
		}
	}
	return out
}

// Granted reports whether roles satisfy n.
func (n Need) Granted(roles []string) bool {
	return slices.ContainsFunc(n.AnyOf, func(p string) bool { return slices.Contains(roles, p) })
}

// MissingPermissions returns the Needs of Permissions that roles do not grant.
func MissingPermissions(roles []string) []Need {
	var out []Need
	for _, n := range Permissions {
		if !n.Granted(roles) {
			out = append(out, n)
		}
	}
	return out
}

// featureOf is the feature whose write changes an item of kind k.
func featureOf(k Kind) string {
	switch k {
	case KindSecurityDefaults:
		return FeatureSecurityDefaults
	case KindSharePointLegacyAuth, KindSharePointInvitedMatch:
		return FeatureSharePoint
	case KindCAExcludeUser, KindCAExcludeServicePrincipal:
		return FeatureCAExclusion
	}
	return ""
}

// MissingForItem returns what roles lack to change (and put back) it.
func MissingForItem(it Item, roles []string) []Need {
	var out []Need
	for _, n := range Permissions {
		if n.Feature == featureOf(it.Kind) && n.Access == Write && !n.Granted(roles) {
			out = append(out, n)
		}
	}
	return out
}

// ErrNoRoles means an access token carries no readable roles claim.
var ErrNoRoles = errors.New("the access token has no roles claim")

// TokenRoles returns the application permissions (the roles claim) of the
// Graph access token c2bot signs in with. It decodes the token's JWT payload
// without checking its signature: the token comes straight from Entra ID
// over TLS, and this is a self-check of what was granted, never a decision
// to trust a caller. A token without a roles claim (no permission granted
// yet) gives an empty list.
func (c *Client) TokenRoles(ctx context.Context) ([]string, error) {
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.cfg.GraphURL + "/.default"}})
	if err != nil {
		return nil, err
	}
	return rolesOf(tok.Token)
}

// rolesOf decodes the roles claim of a JWT.
func rolesOf(token string) ([]string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a JWT", ErrNoRoles)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrNoRoles)
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("%w: payload is not JSON", ErrNoRoles)
	}
	return claims.Roles, nil
}

// permissionFindings marks each plan item c2bot could not write for want of
// a permission, and returns a warning finding per such item. A token whose
// roles cannot be read leaves the plan alone.
func (c *Client) permissionFindings(ctx context.Context, plan []Item) []Finding {
	if len(plan) == 0 {
		return nil
	}
	roles, err := c.TokenRoles(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "permission self-check skipped", "err", err)
		return nil
	}
	var out []Finding
	for i := range plan {
		miss := MissingForItem(plan[i], roles)
		if len(miss) == 0 {
			continue
		}
		names := make([]string, len(miss))
		for j, n := range miss {
			names[j] = n.String()
		}
		plan[i].MissingPermission = strings.Join(names, " and ")
		out = append(out, Finding{
			Check:    CheckPermissions,
			Severity: SeverityWarning,
			Title:    "c2bot cannot change " + plan[i].Setting() + ": its app lacks " + plan[i].MissingPermission,
			Evidence: []Evidence{{Name: "granted application permissions", Value: strings.Join(roles, ", ")}, {Name: "reference", Value: miss[0].Doc}},
			Fix:      "Grant the application permission " + plan[i].MissingPermission + " to c2bot's app registration (admin consent), or the change fails when it is approved.",
		})
	}
	return out
}
