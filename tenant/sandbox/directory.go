package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// PolicyMore is the part of a Conditional Access policy beyond the basics
// in Policy; empty fields are not configured. It is served in Graph's
// conditionalAccessPolicy shape
// (https://learn.microsoft.com/graph/api/resources/conditionalaccesspolicy).
type PolicyMore struct {
	// TemplateID is templateId (policies created from a template).
	TemplateID string
	// Users: groups (transitive membership counts) and directory roles
	// (role template ids).
	IncludeGroups, ExcludeGroups []string
	IncludeRoles, ExcludeRoles   []string
	// IncludeGuestTypes / ExcludeGuestTypes are
	// include/excludeGuestsOrExternalUsers.guestOrExternalUserTypes
	// ("b2bCollaborationGuest", "internalGuest", …), for all external tenants.
	IncludeGuestTypes, ExcludeGuestTypes []string
	// IncludeApplications defaults to ["All"]; "Office365" and app ids work.
	IncludeApplications, ExcludeApplications []string
	// IncludeUserActions ("urn:user:registersecurityinfo") make an
	// app-less policy.
	IncludeUserActions []string
	// Workload identities (conditions.clientApplications): service
	// principal object ids or "ServicePrincipalsInMyTenant". A policy with
	// these targets no users (includeUsers is served as ["None"]).
	IncludeServicePrincipals, ExcludeServicePrincipals []string
	// Conditions the sign-in's circumstances decide.
	IncludeLocations, ExcludeLocations []string
	IncludePlatforms, ExcludePlatforms []string
	SignInRiskLevels                   []string
	UserRiskLevels                     []string
	ServicePrincipalRiskLevels         []string
	// DeviceFilter is devices.deviceFilter.rule (mode "include").
	DeviceFilter string
	// TransferMethods is authenticationFlows.transferMethods
	// ("deviceCodeFlow", "authenticationTransfer").
	TransferMethods string
	// Grant replaces grantControls.builtInControls when set ("mfa",
	// "compliantDevice", "block", …); otherwise Policy.Block decides.
	Grant []string
	// GrantOperator is "OR" (default) or "AND".
	GrantOperator string
	// AuthStrength is the display name of a built-in authentication
	// strength ("Multifactor authentication", "Phishing-resistant MFA").
	AuthStrength string
	// TermsOfUse are terms-of-use agreement ids.
	TermsOfUse []string
}

func (m PolicyMore) clone() PolicyMore {
	for _, l := range []*[]string{
		&m.IncludeGroups, &m.ExcludeGroups, &m.IncludeRoles, &m.ExcludeRoles,
		&m.IncludeGuestTypes, &m.ExcludeGuestTypes, &m.IncludeApplications, &m.ExcludeApplications,
		&m.IncludeUserActions, &m.IncludeServicePrincipals, &m.ExcludeServicePrincipals,
		&m.IncludeLocations, &m.ExcludeLocations, &m.IncludePlatforms, &m.ExcludePlatforms,
		&m.SignInRiskLevels, &m.UserRiskLevels, &m.ServicePrincipalRiskLevels, &m.Grant, &m.TermsOfUse,
	} {
		if *l != nil {
			*l = cloneStrings(*l)
		}
	}
	return m
}

// policyGrant is the policy's builtInControls.
func policyGrant(p Policy) []string {
	switch {
	case p.Grant != nil:
		return cloneStrings(p.Grant)
	case p.Block:
		return []string{"block"}
	}
	return []string{"mfa"}
}

// isWorkload: the policy is assigned to workload identities.
func (p Policy) isWorkload() bool { return len(p.IncludeServicePrincipals) > 0 }

// directory is the sandbox's directory beyond its fixed people: groups
// (members are user, service principal or group ids), directory roles by
// role template id, service principals, and user types. Guarded by
// Server.mu.
type directory struct {
	groups    map[string]*dirGroup
	roles     map[string]*dirRole // by lower-case role template id
	sps       map[string]ServicePrincipal
	userTypes map[string]string // lower-case user id → "Guest"
}

type dirGroup struct {
	id, name string
	members  []string
}

type dirRole struct {
	id, templateID, name string
	members              []string
}

// ServicePrincipal is a service principal the sandbox knows.
type ServicePrincipal struct {
	ID, AppID, DisplayName string
	// AppOwnerTenantID is appOwnerOrganizationId; empty means the sandbox
	// tenant (a single-tenant app registered here).
	AppOwnerTenantID string
}

func (d *directory) init() {
	if d.groups == nil {
		d.groups = map[string]*dirGroup{}
		d.roles = map[string]*dirRole{}
		d.sps = map[string]ServicePrincipal{}
		d.userTypes = map[string]string{}
	}
}

// AddGroup creates a security group. The id must be a GUID not yet used.
func (s *Server) AddGroup(id, displayName string) error {
	if !isGUID(id) {
		return fmt.Errorf("sandbox group id %q: not a GUID", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.init()
	if _, ok := s.dir.groups[strings.ToLower(id)]; ok {
		return fmt.Errorf("sandbox group %s exists", id)
	}
	s.dir.groups[strings.ToLower(id)] = &dirGroup{id: id, name: displayName}
	return nil
}

// AddMember makes memberID (a user, service principal or group id) a direct
// member of group groupID; nesting a group gives its members transitive
// membership.
func (s *Server) AddMember(groupID, memberID string) error {
	if !isGUID(memberID) {
		return fmt.Errorf("sandbox member id %q: not a GUID", memberID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.init()
	g, ok := s.dir.groups[strings.ToLower(groupID)]
	if !ok {
		return fmt.Errorf("sandbox group %s: unknown", groupID)
	}
	g.members = append(g.members, memberID)
	return nil
}

// AddRoleHolder assigns the directory role with template roleTemplateID
// (e.g. 62e90394-69f5-4237-9190-012177145e10, Global Administrator) to
// memberID (a user or a role-assignable group), activating the role with
// displayName when it is the first holder.
func (s *Server) AddRoleHolder(roleTemplateID, displayName, memberID string) error {
	if !isGUID(roleTemplateID) || !isGUID(memberID) {
		return errors.New("sandbox role holder: role template id and member id must be GUIDs")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.init()
	key := strings.ToLower(roleTemplateID)
	r, ok := s.dir.roles[key]
	if !ok {
		r = &dirRole{id: stableGUID("directoryRole", key), templateID: roleTemplateID, name: displayName}
		s.dir.roles[key] = r
	}
	r.members = append(r.members, memberID)
	return nil
}

// AddServicePrincipal registers a service principal.
func (s *Server) AddServicePrincipal(sp ServicePrincipal) error {
	if !isGUID(sp.ID) || !isGUID(sp.AppID) {
		return errors.New("sandbox service principal: id and app id must be GUIDs")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.init()
	for _, o := range s.dir.sps {
		if strings.EqualFold(o.AppID, sp.AppID) {
			return fmt.Errorf("sandbox service principal for app %s exists", sp.AppID)
		}
	}
	s.dir.sps[strings.ToLower(sp.ID)] = sp
	return nil
}

// SetUserType sets a user's userType ("Member" or "Guest").
func (s *Server) SetUserType(userID, userType string) error {
	if !strings.EqualFold(userType, "Member") && !strings.EqualFold(userType, "Guest") {
		return fmt.Errorf("sandbox user type %q: want Member or Guest", userType)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.init()
	if strings.EqualFold(userType, "Guest") {
		s.dir.userTypes[strings.ToLower(userID)] = "Guest"
	} else {
		delete(s.dir.userTypes, strings.ToLower(userID))
	}
	return nil
}

// userTypeLocked is a user's userType.
func (s *Server) userTypeLocked(id string) string {
	if t := s.dir.userTypes[strings.ToLower(id)]; t != "" {
		return t
	}
	return "Member"
}

// memberObject is one entry of a transitiveMemberOf answer.
type memberObject struct {
	kind, id, name, templateID string
}

// transitiveLocked returns the groups (nested ones included) and directory
// roles memberID belongs to, ordered by object id.
func (s *Server) transitiveLocked(memberID string) []memberObject {
	in := map[string]bool{strings.ToLower(memberID): true}
	// Grow the set of ids until no group adds one: a group is in when one
	// of its members is.
	for changed := true; changed; {
		changed = false
		for key, g := range s.dir.groups {
			if in[key] {
				continue
			}
			for _, m := range g.members {
				if in[strings.ToLower(m)] {
					in[key], changed = true, true
					break
				}
			}
		}
	}
	var out []memberObject
	for key, g := range s.dir.groups {
		if in[key] && !strings.EqualFold(key, memberID) {
			out = append(out, memberObject{kind: "group", id: g.id, name: g.name})
		}
	}
	for _, r := range s.dir.roles {
		for _, m := range r.members {
			if in[strings.ToLower(m)] {
				out = append(out, memberObject{kind: "directoryRole", id: r.id, name: r.name, templateID: r.templateID})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// knownUser finds a sandbox user by object id or user principal name.
func (s *Server) knownUser(key string) (person, bool) {
	for _, p := range s.people() {
		if strings.EqualFold(p.id, key) || strings.EqualFold(p.upn, key) {
			return p, true
		}
	}
	return person{}, false
}

// Paging of transitiveMemberOf: "The default and maximum page sizes are 100
// and 999 objects" (https://learn.microsoft.com/graph/api/user-list-transitivememberof).
const (
	memberPageDefault = 100
	memberPageMax     = 999
)

// listTransitiveMemberOf serves GET /users/{id|upn}/transitiveMemberOf.
func (s *Server) listTransitiveMemberOf(w http.ResponseWriter, r *http.Request, ids reqIDs, key string) {
	u, ok := s.knownUser(key)
	if !ok {
		s.graphError(w, ids, http.StatusNotFound, "Request_ResourceNotFound",
			"Resource '"+key+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	q := r.URL.Query()
	size := memberPageDefault
	if v := q.Get("$top"); v != "" {
		n, ok := queryInt(v)
		if !ok || n > memberPageMax {
			s.graphError(w, ids, http.StatusBadRequest, "Request_BadRequest", "Invalid value '"+v+"' for query option $top.")
			return
		}
		size = n
	}
	skip := 0
	if v := q.Get("$skiptoken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.graphError(w, ids, http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
			return
		}
		skip = n
	}
	var sel map[string]bool
	if v := q.Get("$select"); v != "" {
		sel = map[string]bool{}
		for _, f := range strings.Split(v, ",") {
			sel[strings.TrimSpace(f)] = true
		}
	}
	s.mu.Lock()
	s.dir.init()
	all := s.transitiveLocked(u.id)
	s.mu.Unlock()
	if skip > len(all) {
		skip = len(all)
	}
	end := min(skip+size, len(all))
	value := make([]orderedObject, 0, end-skip)
	for _, o := range all[skip:end] {
		obj := orderedObject{{"@odata.type", "#microsoft.graph." + o.kind}}
		add := func(k string, v any) {
			if sel == nil || sel[k] {
				obj = append(obj, field{k, v})
			}
		}
		add("id", o.id)
		add("displayName", o.name)
		if o.kind == "group" {
			add("securityEnabled", true)
			add("mailEnabled", false)
		} else {
			add("description", o.name)
			add("roleTemplateId", o.templateID)
		}
		value = append(value, obj)
	}
	out := orderedObject{{"@odata.context", s.context("directoryObjects")}}
	if end < len(all) {
		next := url.Values{}
		for k, v := range q {
			if k != "$skiptoken" {
				next[k] = v
			}
		}
		next.Set("$skiptoken", strconv.Itoa(end))
		out = append(out, field{"@odata.nextLink", s.url + "/v1.0" + strings.TrimPrefix(r.URL.Path, "/v1.0") + "?" + next.Encode()})
	}
	out = append(out, field{"value", value})
	writeJSON(w, http.StatusOK, out)
}

// getServicePrincipalByAppID serves GET /servicePrincipals(appId='…').
func (s *Server) getServicePrincipalByAppID(w http.ResponseWriter, r *http.Request, ids reqIDs, appID string) {
	s.mu.Lock()
	s.dir.init()
	var sp *ServicePrincipal
	for _, o := range s.dir.sps {
		if strings.EqualFold(o.AppID, appID) {
			sp = &o
			break
		}
	}
	s.mu.Unlock()
	if sp == nil {
		s.graphError(w, ids, http.StatusNotFound, "Request_ResourceNotFound",
			"Resource 'appId="+appID+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	owner := sp.AppOwnerTenantID
	if owner == "" {
		owner = s.opts.TenantID
	}
	values := map[string]any{
		"id": sp.ID, "appId": sp.AppID, "displayName": sp.DisplayName, "appDisplayName": sp.DisplayName,
		"appOwnerOrganizationId": owner, "servicePrincipalType": "Application", "accountEnabled": true,
	}
	order := []string{"id", "accountEnabled", "appDisplayName", "appId", "appOwnerOrganizationId", "displayName", "servicePrincipalType"}
	ctx := "servicePrincipals/$entity"
	if v := r.URL.Query().Get("$select"); v != "" {
		order = nil
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if _, ok := values[f]; !ok {
				s.graphError(w, ids, http.StatusBadRequest, "Request_BadRequest", "Could not find a property named '"+f+"' on type 'microsoft.graph.servicePrincipal'.")
				return
			}
			order = append(order, f)
		}
		ctx = "servicePrincipals(" + strings.Join(order, ",") + ")/$entity"
	}
	out := orderedObject{{"@odata.context", s.context(ctx)}}
	for _, k := range order {
		out = append(out, field{k, values[k]})
	}
	writeJSON(w, http.StatusOK, out)
}

// serviceDirectory routes the directory endpoints; it reports whether it
// served the request.
func (s *Server) serveDirectory(w http.ResponseWriter, r *http.Request, ids reqIDs, segs, lower []string, body []byte) bool {
	switch {
	case len(segs) == 3 && lower[0] == "users" && lower[2] == "transitivememberof":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			s.graphError(w, ids, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
			return true
		}
		s.listTransitiveMemberOf(w, r, ids, unquoteKey(segs[1]))
		return true
	case len(segs) == 1 && strings.HasPrefix(lower[0], "serviceprincipals(appid="):
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			s.graphError(w, ids, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
			return true
		}
		key := strings.TrimSuffix(segs[0][len("servicePrincipals(appId="):], ")")
		s.getServicePrincipalByAppID(w, r, ids, unquoteKey(key))
		return true
	case strings.Join(lower, "/") == "identity/conditionalaccess/evaluate":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			s.graphError(w, ids, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
			return true
		}
		s.evaluate(w, ids, body)
		return true
	}
	return false
}

// userTypeOf is a user's userType.
func (s *Server) userTypeOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userTypeLocked(id)
}

// builtInStrengths are the built-in authentication strengths
// (https://learn.microsoft.com/entra/identity/authentication/concept-authentication-strengths).
var builtInStrengths = map[string]string{
	"Multifactor authentication": "00000000-0000-0000-0000-000000000002",
	"Passwordless MFA":           "00000000-0000-0000-0000-000000000003",
	"Phishing-resistant MFA":     "00000000-0000-0000-0000-000000000004",
}

// policyMoreJSON serves the PolicyMore part of a policy.
func policyMoreJSON(out *caPolicyJSON, p Policy) {
	m := p.PolicyMore
	if m.TemplateID != "" {
		t := m.TemplateID
		out.TemplateID = &t
	}
	c := &out.Conditions
	c.UserRiskLevels = nonNil(cloneStrings(m.UserRiskLevels))
	c.SignInRiskLevels = nonNil(cloneStrings(m.SignInRiskLevels))
	c.ServicePrincipalRiskLevels = nonNil(cloneStrings(m.ServicePrincipalRiskLevels))
	if len(m.IncludePlatforms) > 0 {
		c.Platforms = map[string]any{"includePlatforms": m.IncludePlatforms, "excludePlatforms": nonNil(m.ExcludePlatforms)}
	}
	if len(m.IncludeLocations) > 0 {
		c.Locations = map[string]any{"includeLocations": m.IncludeLocations, "excludeLocations": nonNil(m.ExcludeLocations)}
	}
	if m.DeviceFilter != "" {
		c.Devices = map[string]any{"deviceFilter": map[string]any{"mode": "include", "rule": m.DeviceFilter}}
	}
	if m.TransferMethods != "" {
		c.AuthenticationFlows = map[string]any{"transferMethods": m.TransferMethods}
	}
	if p.isWorkload() {
		c.ClientApplications = map[string]any{
			"includeServicePrincipals": m.IncludeServicePrincipals,
			"excludeServicePrincipals": nonNil(m.ExcludeServicePrincipals),
			"servicePrincipalFilter":   nil,
		}
		c.Users.IncludeUsers = []string{"None"}
	}
	if m.IncludeApplications != nil {
		c.Applications.IncludeApplications = cloneStrings(m.IncludeApplications)
	} else if len(m.IncludeUserActions) > 0 {
		c.Applications.IncludeApplications = []string{}
	}
	c.Applications.ExcludeApplications = nonNil(cloneStrings(m.ExcludeApplications))
	c.Applications.IncludeUserActions = nonNil(cloneStrings(m.IncludeUserActions))
	c.Users.IncludeGroups = nonNil(cloneStrings(m.IncludeGroups))
	c.Users.ExcludeGroups = nonNil(cloneStrings(m.ExcludeGroups))
	c.Users.IncludeRoles = nonNil(cloneStrings(m.IncludeRoles))
	c.Users.ExcludeRoles = nonNil(cloneStrings(m.ExcludeRoles))
	guests := func(types []string) any {
		if len(types) == 0 {
			return nil
		}
		return map[string]any{
			"guestOrExternalUserTypes": strings.Join(types, ","),
			"externalTenants": map[string]any{
				"@odata.type":    "#microsoft.graph.conditionalAccessAllExternalTenants",
				"membershipKind": "all",
			},
		}
	}
	c.Users.IncludeGuestsOrExternalUsers = guests(m.IncludeGuestTypes)
	c.Users.ExcludeGuestsOrExternalUsers = guests(m.ExcludeGuestTypes)
	g := &out.GrantControls
	if m.GrantOperator != "" {
		g.Operator = m.GrantOperator
	}
	g.TermsOfUse = nonNil(cloneStrings(m.TermsOfUse))
	if m.AuthStrength != "" {
		if m.Grant == nil {
			g.BuiltInControls = []string{}
		}
		g.AuthenticationStrength = map[string]any{
			"id":                    builtInStrengths[m.AuthStrength],
			"displayName":           m.AuthStrength,
			"policyType":            "builtIn",
			"requirementsSatisfied": "mfa",
		}
	}
}

// patchClientApplications applies a PATCH of conditions.clientApplications
// (the workload identities a policy covers). Unset lists are kept.
func patchClientApplications(pol *Policy, c *struct {
	IncludeServicePrincipals *[]string `json:"includeServicePrincipals"`
	ExcludeServicePrincipals *[]string `json:"excludeServicePrincipals"`
}) {
	if c == nil {
		return
	}
	if c.IncludeServicePrincipals != nil {
		pol.IncludeServicePrincipals = cloneStrings(*c.IncludeServicePrincipals)
	}
	if c.ExcludeServicePrincipals != nil {
		pol.ExcludeServicePrincipals = cloneStrings(*c.ExcludeServicePrincipals)
	}
}

// badServicePrincipalRefs checks a clientApplications PATCH: every entry is
// a service principal object id or ServicePrincipalsInMyTenant.
func badServicePrincipalRefs(c *struct {
	IncludeServicePrincipals *[]string `json:"includeServicePrincipals"`
	ExcludeServicePrincipals *[]string `json:"excludeServicePrincipals"`
}) string {
	if c == nil {
		return ""
	}
	for _, list := range []*[]string{c.IncludeServicePrincipals, c.ExcludeServicePrincipals} {
		if list == nil {
			continue
		}
		for _, v := range *list {
			if v != "ServicePrincipalsInMyTenant" && !isGUID(v) {
				return "The service principal '" + v + "' in conditions.clientApplications is not a valid object id; use 'ServicePrincipalsInMyTenant' or a service principal object id."
			}
		}
	}
	return ""
}
