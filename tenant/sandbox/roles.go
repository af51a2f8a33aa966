package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Application permissions (app roles) in the sandbox's access tokens, and
// the ones each endpoint demands. An endpoint answers 403
// Authorization_RequestDenied when the token carries none of its roles, as
// Graph does. The lists are those of the Microsoft Graph API reference:
//   - GET/PATCH /policies/identitySecurityDefaultsEnforcementPolicy:
//     https://learn.microsoft.com/en-us/graph/api/identitysecuritydefaultsenforcementpolicy-get,
//     https://learn.microsoft.com/en-us/graph/api/identitysecuritydefaultsenforcementpolicy-update
//     (that page lists Policy.Read.All as least privileged for the PATCH too;
//     a write needs one of the ReadWrite permissions, which is what the
//     sandbox enforces)
//   - GET/PATCH /admin/sharepoint/settings:
//     https://learn.microsoft.com/en-us/graph/api/sharepointsettings-get,
//     https://learn.microsoft.com/en-us/graph/api/sharepointsettings-update
//   - GET /identity/conditionalAccess/policies and PATCH …/policies/{id}:
//     https://learn.microsoft.com/en-us/graph/api/conditionalaccessroot-list-policies,
//     https://learn.microsoft.com/en-us/graph/api/conditionalaccesspolicy-update
//   - GET /auditLogs/signIns: https://learn.microsoft.com/en-us/graph/api/signin-list
//   - GET /users/{id}: https://learn.microsoft.com/en-us/graph/api/user-get
//   - POST /identity/conditionalAccess/evaluate: https://learn.microsoft.com/en-us/graph/api/conditionalaccessroot-evaluate
//   - GET /users/{id}/transitiveMemberOf: https://learn.microsoft.com/en-us/graph/api/user-list-transitivememberof
//   - GET /servicePrincipals(appId='…'): https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get

// AllRoles are the roles a token carries when Options.Roles is nil: every
// permission c2bot asks for.
var AllRoles = []string{
	"Policy.Read.All", "Policy.ReadWrite.SecurityDefaults", "Policy.ReadWrite.ConditionalAccess",
	"SharePointTenantSettings.Read.All", "SharePointTenantSettings.ReadWrite.All",
	"AuditLog.Read.All", "Directory.Read.All", "User.Read.All",
	"GroupMember.Read.All", "Application.Read.All",
}

// endpointRoles says which roles satisfy a request: every inner list must be
// met by one of its roles.
func endpointRoles(method, route string) [][]string {
	write := method != http.MethodGet
	switch {
	case route == "policies/identitysecuritydefaultsenforcementpolicy" && write:
		return [][]string{{"Policy.ReadWrite.SecurityDefaults", "Policy.ReadWrite.ConditionalAccess"}}
	case route == "policies/identitysecuritydefaultsenforcementpolicy":
		return [][]string{{"Policy.Read.All", "Policy.ReadWrite.SecurityDefaults", "Policy.ReadWrite.ConditionalAccess"}}
	case route == "admin/sharepoint/settings" && write:
		return [][]string{{"SharePointTenantSettings.ReadWrite.All"}}
	case route == "admin/sharepoint/settings":
		return [][]string{{"SharePointTenantSettings.Read.All", "SharePointTenantSettings.ReadWrite.All"}}
	case strings.HasPrefix(route, "identity/conditionalaccess/policies") && write:
		return [][]string{{"Policy.Read.All", "Application.Read.All"}, {"Policy.ReadWrite.ConditionalAccess"}}
	case strings.HasPrefix(route, "identity/conditionalaccess/policies"):
		return [][]string{{"Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"}}
	case route == "identity/conditionalaccess/evaluate":
		return [][]string{{"Policy.Read.All", "Policy.Read.ConditionalAccess"}}
	case strings.HasPrefix(route, "users/") && strings.HasSuffix(route, "/transitivememberof"):
		return [][]string{{"GroupMember.Read.All", "Directory.Read.All"}}
	case strings.HasPrefix(route, "serviceprincipals"):
		return [][]string{{"Application.Read.All", "Directory.Read.All"}}
	case route == "auditlogs/signins":
		return [][]string{{"AuditLog.Read.All"}, {"Directory.Read.All"}}
	case strings.HasPrefix(route, "users"):
		return [][]string{{"User.Read.All", "Directory.Read.All"}}
	}
	return nil
}

// allowed reports whether roles satisfy the endpoint.
func allowed(roles []string, need [][]string) bool {
	for _, anyOf := range need {
		if !slices.ContainsFunc(anyOf, func(r string) bool { return slices.Contains(roles, r) }) {
			return false
		}
	}
	return true
}

// issuedToken is what the sandbox remembers of an access token.
type issuedToken struct {
	exp   time.Time
	roles []string
}

// SetRoles sets the roles claim of the access tokens issued from now on
// (nil: AllRoles). Tokens already issued keep theirs, as in Entra ID, where
// a consent change shows in the next token.
func (s *Server) SetRoles(roles []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles = slices.Clone(roles)
	if roles == nil {
		s.roles = nil
	}
}

// newAccessToken is a JWT-shaped access token carrying the claims a Graph
// token has (aud, iss, tid, appid, roles, iat, nbf, exp). Its signature is
// random bytes: the sandbox recognises its tokens by value, and c2bot reads
// the payload only for its permission self-check.
func (s *Server) newAccessToken(now time.Time, lifetime time.Duration, roles []string) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": "sandbox"})
	payload, _ := json.Marshal(map[string]any{
		"aud":   "https://graph.microsoft.com",
		"iss":   "https://sts.windows.net/" + s.opts.TenantID + "/",
		"tid":   s.opts.TenantID,
		"appid": s.opts.ClientID,
		"roles": roles,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(lifetime).Unix(),
		"uti":   newGUID(),
	})
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte(newGUID()+newGUID()))
}
