package tenant

import (
	"fmt"
	"slices"
	"strings"
)

// GraphAppID is Microsoft Graph's application id, the resourceAppId of its
// permissions in an app registration's requiredResourceAccess (the same in
// every cloud).
const GraphAppID = "00000003-0000-0000-c000-000000000000"

// appRoleIDs are the ids of Microsoft Graph's application permissions
// (app roles) in the global cloud, from the Microsoft Graph permissions
// reference, https://learn.microsoft.com/graph/permissions-reference. A
// national cloud may use other ids for some (21Vianet does for
// Policy.Read.All), so the generated scripts look each id up by name in the
// tenant they run against.
var appRoleIDs = map[string]string{
	"Application.Read.All":                   "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
	"AuditLog.Read.All":                      "b0afded3-3588-46d8-8b3d-9842eff778da",
	"Directory.Read.All":                     "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
	"GroupMember.Read.All":                   "98830695-27a2-44f7-8c18-0c3ebc9698f6",
	"Policy.Read.All":                        "246dd0d5-5bd0-4def-940b-0421030a5b68",
	"Policy.Read.ConditionalAccess":          "37730810-e9ba-4e46-b07e-8ca78d182097",
	"Policy.ReadWrite.ConditionalAccess":     "01c0a623-fc9b-48e9-b794-0756f8e8f067",
	"Policy.ReadWrite.SecurityDefaults":      "1c6e93a6-28e2-4cbb-9f64-1a46a821124d",
	"SharePointTenantSettings.Read.All":      "83d4163d-a2d8-4d3b-9695-4ae3ca98f888",
	"SharePointTenantSettings.ReadWrite.All": "19b94e34-907c-4f43-bde9-38b1909ed408",
	"User.Read.All":                          "df021288-bdef-4463-88db-98f22de89214",
}

// AppRoleID returns the global-cloud id of a Graph application permission.
func AppRoleID(name string) (string, bool) {
	id, ok := appRoleIDs[name]
	return id, ok
}

// FeatureKey is the short name of a feature on the command line
// ("security-defaults", "ca-exclusion", …).
func FeatureKey(feature string) string {
	switch feature {
	case FeatureSecurityDefaults:
		return "security-defaults"
	case FeatureSharePoint:
		return "sharepoint"
	case FeatureConditionalAccess:
		return "conditional-access"
	case FeatureCAExclusion:
		return "ca-exclusion"
	case FeatureSignIns:
		return "signins"
	case FeatureToolAccount:
		return "tool-account"
	case FeatureWhatIf:
		return "what-if"
	case FeatureMemberships:
		return "memberships"
	case FeatureServicePrincipal:
		return "service-principal"
	}
	return strings.ToLower(strings.ReplaceAll(feature, " ", "-"))
}

// FeatureKeys lists the features of Permissions by key, in table order.
func FeatureKeys() []string {
	var out []string
	for _, n := range Permissions {
		if k := FeatureKey(n.Feature); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// Registration is what an app registration for c2bot must be granted.
type Registration struct {
	// Needs are the rows of Permissions kept.
	Needs []Need
	// Permissions are the application permissions to grant, each once,
	// least privileged first (the first of each Need's AnyOf).
	Permissions []string
}

// RegistrationFor selects the rows of Permissions for the features named by
// key (all when none), without the writes when readOnly. An unknown key is
// an error naming the known ones.
func RegistrationFor(keys []string, readOnly bool) (Registration, error) {
	known := FeatureKeys()
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return Registration{}, fmt.Errorf("unknown feature %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	var r Registration
	for _, n := range Permissions {
		if len(keys) > 0 && !slices.Contains(keys, FeatureKey(n.Feature)) {
			continue
		}
		if readOnly && n.Access == Write {
			continue
		}
		r.Needs = append(r.Needs, n)
		if p := n.AnyOf[0]; !slices.Contains(r.Permissions, p) {
			r.Permissions = append(r.Permissions, p)
		}
	}
	return r, nil
}

// ResourceAccess is one entry of requiredResourceAccess.resourceAccess.
type ResourceAccess struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// RequiredResourceAccess is one entry of an application's
// requiredResourceAccess, as Graph and `az ad app create
// --required-resource-accesses` take it.
type RequiredResourceAccess struct {
	ResourceAppID  string           `json:"resourceAppId"`
	ResourceAccess []ResourceAccess `json:"resourceAccess"`
}

// RequiredResourceAccess is r's permissions as application roles of Graph,
// by their global-cloud ids. It fails for a permission with no known id.
func (r Registration) RequiredResourceAccess() ([]RequiredResourceAccess, error) {
	rra := RequiredResourceAccess{ResourceAppID: GraphAppID, ResourceAccess: []ResourceAccess{}}
	for _, p := range r.Permissions {
		id, ok := AppRoleID(p)
		if !ok {
			return nil, fmt.Errorf("no app role id known for %s", p)
		}
		rra.ResourceAccess = append(rra.ResourceAccess, ResourceAccess{ID: id, Type: "Role"})
	}
	return []RequiredResourceAccess{rra}, nil
}
