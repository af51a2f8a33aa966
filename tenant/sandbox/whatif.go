package sandbox

import (
	"encoding/json"
	"net/http"
	"strings"
)

// What If: POST /identity/conditionalAccess/evaluate
// (https://learn.microsoft.com/graph/api/conditionalaccessroot-evaluate).
// Written from the documentation for the sandbox's own policy model; it does
// not share code with c2bot's evaluator, so the two can disagree.
//
// Documented behaviour encoded here:
//   - only enabled and report-only policies are evaluated
//     (https://learn.microsoft.com/entra/identity/conditional-access/what-if-tool);
//   - each answer is the policy plus policyApplies and analysisReasons, the
//     first condition that was not satisfied, "notSet" when it applies
//     (https://learn.microsoft.com/graph/api/resources/whatifanalysisresult);
//   - a condition whose sign-in detail is missing from the request is not
//     met: "If your tenant has policies with specific conditions and the
//     sign-in details for those conditions aren't provided, the What If API
//     can't evaluate those conditions" (what-if-tool, example table: a policy
//     with a location and sign-in risk "Does not apply" until both are given);
//   - servicePrincipalSignIn.servicePrincipalId is the appId
//     (https://learn.microsoft.com/graph/api/resources/serviceprincipalsignin);
//   - workload-identity policies cover single-tenant service principals
//     registered in the tenant only
//     (https://learn.microsoft.com/entra/identity/conditional-access/workload-identity).

type evaluateRequest struct {
	SignInIdentity *struct {
		Type               string `json:"@odata.type"`
		UserID             string `json:"userId"`
		ServicePrincipalID string `json:"servicePrincipalId"`
	} `json:"signInIdentity"`
	SignInContext *struct {
		Type                string   `json:"@odata.type"`
		IncludeApplications []string `json:"includeApplications"`
	} `json:"signInContext"`
	SignInConditions    *signInConditions `json:"signInConditions"`
	AppliedPoliciesOnly bool              `json:"appliedPoliciesOnly"`
}

type signInConditions struct {
	ClientAppType             string `json:"clientAppType"`
	DevicePlatform            string `json:"devicePlatform"`
	Country                   string `json:"country"`
	IPAddress                 string `json:"ipAddress"`
	SignInRiskLevel           string `json:"signInRiskLevel"`
	UserRiskLevel             string `json:"userRiskLevel"`
	ServicePrincipalRiskLevel string `json:"servicePrincipalRiskLevel"`
	AuthenticationFlow        *struct {
		TransferMethod string `json:"transferMethod"`
	} `json:"authenticationFlow"`
	DeviceInfo map[string]any `json:"deviceInfo"`
}

// signInIdentity is who What If evaluates: a user or a service principal.
type signInIdentity struct {
	userID   string // object id (users)
	guest    bool
	sp       *ServicePrincipal
	spInHome bool // the service principal's app is registered in this tenant
}

// office365Members are the Office 365 apps the sandbox knows
// (https://learn.microsoft.com/entra/identity/conditional-access/reference-office-365-application-contents).
var office365Members = map[string]bool{
	"00000002-0000-0ff1-ce00-000000000000": true, // Office 365 Exchange Online
	"00000003-0000-0ff1-ce00-000000000000": true, // Office 365 SharePoint Online
	"1fec8e78-bce4-4aaf-ab1b-5451cc387264": true, // Microsoft Teams
}

func (s *Server) evaluate(w http.ResponseWriter, ids reqIDs, body []byte) {
	var req evaluateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.graphError(w, ids, http.StatusBadRequest, "BadRequest", "Invalid JSON. A JSON object was expected.")
		return
	}
	bad := func(msg string) { s.graphError(w, ids, http.StatusBadRequest, "BadRequest", msg) }
	if req.SignInIdentity == nil {
		bad("The signInIdentity parameter is required.")
		return
	}
	if req.SignInContext == nil || !strings.EqualFold(req.SignInContext.Type, "#microsoft.graph.applicationContext") || len(req.SignInContext.IncludeApplications) == 0 {
		bad("The signInContext parameter is required: an applicationContext with includeApplications.")
		return
	}
	cond := signInConditions{}
	if req.SignInConditions != nil {
		cond = *req.SignInConditions
	}
	if cond.ClientAppType != "" && (!clientAppTypes[cond.ClientAppType] || cond.ClientAppType == "all") {
		bad("Requested value '" + cond.ClientAppType + "' was not found in enum 'conditionalAccessClientApp'.")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.init()
	var who signInIdentity
	switch strings.ToLower(req.SignInIdentity.Type) {
	case "#microsoft.graph.usersignin":
		u, ok := s.knownUser(req.SignInIdentity.UserID)
		if !ok || !isGUID(req.SignInIdentity.UserID) {
			bad("The user '" + req.SignInIdentity.UserID + "' was not found in the tenant.")
			return
		}
		who = signInIdentity{userID: u.id, guest: s.userTypeLocked(u.id) == "Guest"}
	case "#microsoft.graph.serviceprincipalsignin":
		for _, sp := range s.dir.sps {
			if strings.EqualFold(sp.AppID, req.SignInIdentity.ServicePrincipalID) {
				sp := sp
				who = signInIdentity{sp: &sp, spInHome: sp.AppOwnerTenantID == "" || strings.EqualFold(sp.AppOwnerTenantID, s.opts.TenantID)}
			}
		}
		if who.sp == nil {
			bad("The service principal '" + req.SignInIdentity.ServicePrincipalID + "' was not found in the tenant.")
			return
		}
	default:
		bad("signInIdentity must be a #microsoft.graph.userSignIn or a #microsoft.graph.servicePrincipalSignIn.")
		return
	}

	value := []any{}
	for _, p := range s.state.Policies {
		if p.State == "disabled" {
			continue
		}
		reason := s.whatIfLocked(p, who, req.SignInContext.IncludeApplications, cond)
		if req.AppliedPoliciesOnly && reason != "" {
			continue
		}
		value = append(value, whatIfResult{
			caPolicyJSON:    s.policyJSONLocked(p),
			PolicyApplies:   reason == "",
			AnalysisReasons: map[bool]string{true: "notSet", false: reason}[reason == ""],
		})
	}
	writeJSON(w, http.StatusOK, orderedObject{
		{"@odata.context", s.context("Collection(microsoft.graph.whatIfAnalysisResult)")},
		{"value", value},
	})
}

type whatIfResult struct {
	caPolicyJSON
	PolicyApplies   bool   `json:"policyApplies"`
	AnalysisReasons string `json:"analysisReasons"`
}

// whatIfLocked returns "" when p applies, else the first unmet condition as
// a whatIfAnalysisReasons value.
func (s *Server) whatIfLocked(p Policy, who signInIdentity, apps []string, c signInConditions) string {
	// Users or workload identities.
	if who.sp != nil {
		if !p.isWorkload() || !who.spInHome ||
			containsFold(p.ExcludeServicePrincipals, who.sp.ID) ||
			!(containsFold(p.IncludeServicePrincipals, "ServicePrincipalsInMyTenant") || containsFold(p.IncludeServicePrincipals, who.sp.ID)) {
			return "workloadIdentities"
		}
	} else if p.isWorkload() || !s.userInScopeLocked(p, who) {
		return "users"
	}
	// Target resources: every requested app must be targeted and none excluded.
	for _, app := range apps {
		if !appTargeted(p, app) {
			return "application"
		}
	}
	// Client apps (users only); a missing client app type meets only "all".
	if who.sp == nil && !(len(p.ClientAppTypes) == 0 || containsFold(p.ClientAppTypes, "all")) {
		ok := containsFold(p.ClientAppTypes, c.ClientAppType) ||
			c.ClientAppType == "exchangeActiveSync" && containsFold(p.ClientAppTypes, "easSupported")
		if c.ClientAppType == "" || !ok {
			return "clientApps"
		}
	}
	if len(p.IncludePlatforms) > 0 {
		if c.DevicePlatform == "" || containsFold(p.ExcludePlatforms, c.DevicePlatform) ||
			!(containsFold(p.IncludePlatforms, "all") || containsFold(p.IncludePlatforms, c.DevicePlatform)) {
			return "devicePlatform"
		}
	}
	if len(p.IncludeLocations) > 0 {
		// The sandbox has no named locations: only "All" without
		// exclusions can be decided, and only when the request says where.
		if c.Country == "" && c.IPAddress == "" || !containsFold(p.IncludeLocations, "All") || len(p.ExcludeLocations) > 0 {
			return "location"
		}
	}
	// Risk levels missing from the request count as "none".
	if len(p.SignInRiskLevels) > 0 && !containsFold(p.SignInRiskLevels, orNone(c.SignInRiskLevel)) {
		return "signInRisk"
	}
	if len(p.UserRiskLevels) > 0 && !containsFold(p.UserRiskLevels, orNone(c.UserRiskLevel)) {
		return "userRisk"
	}
	if len(p.ServicePrincipalRiskLevels) > 0 && !containsFold(p.ServicePrincipalRiskLevels, orNone(c.ServicePrincipalRiskLevel)) {
		return "notEnoughInformation"
	}
	if p.DeviceFilter != "" && len(c.DeviceInfo) == 0 {
		return "devices"
	}
	if p.TransferMethods != "" {
		if c.AuthenticationFlow == nil || !containsFold(strings.Split(p.TransferMethods, ","), c.AuthenticationFlow.TransferMethod) {
			return "authenticationFlow"
		}
	}
	return ""
}

func orNone(level string) string {
	if level == "" {
		return "none"
	}
	return level
}

// userInScopeLocked applies the users assignment: any exclusion wins; then
// All, the user, guests, a group the user is in (transitively) or a role
// the user holds.
func (s *Server) userInScopeLocked(p Policy, who signInIdentity) bool {
	groups := map[string]bool{}
	roles := map[string]bool{}
	for _, o := range s.transitiveLocked(who.userID) {
		if o.kind == "group" {
			groups[strings.ToLower(o.id)] = true
		} else {
			roles[strings.ToLower(o.templateID)] = true
		}
	}
	anyIn := func(list []string, set map[string]bool) bool {
		for _, v := range list {
			if set[strings.ToLower(v)] {
				return true
			}
		}
		return false
	}
	guestTyped := func(types []string) bool {
		return who.guest && (containsFold(types, "b2bCollaborationGuest") || containsFold(types, "internalGuest"))
	}
	if containsFold(p.ExcludeUsers, who.userID) || who.guest && containsFold(p.ExcludeUsers, "GuestsOrExternalUsers") ||
		guestTyped(p.ExcludeGuestTypes) || anyIn(p.ExcludeGroups, groups) || anyIn(p.ExcludeRoles, roles) {
		return false
	}
	return containsFold(p.IncludeUsers, "All") || containsFold(p.IncludeUsers, who.userID) ||
		who.guest && containsFold(p.IncludeUsers, "GuestsOrExternalUsers") || guestTyped(p.IncludeGuestTypes) ||
		anyIn(p.IncludeGroups, groups) || anyIn(p.IncludeRoles, roles)
}

// appTargeted applies include/excludeApplications (default All).
func appTargeted(p Policy, app string) bool {
	in := func(list []string) bool {
		return containsFold(list, "All") || containsFold(list, app) ||
			containsFold(list, "Office365") && office365Members[strings.ToLower(app)]
	}
	if in(p.ExcludeApplications) {
		return false
	}
	include := p.IncludeApplications
	if include == nil && len(p.IncludeUserActions) == 0 {
		include = []string{"All"}
	}
	return in(include)
}

// policyCoversLocked reports whether p covers a sign-in by the same rules
// as What If, for the sign-in generator: a user's (userID) or a service
// principal's (spAppID) sign-in to resource with clientApp ("" for a
// service principal), from country ("" when unknown). The caller holds mu.
func (s *Server) policyCoversLocked(p Policy, userID, spAppID, resource, clientApp, country string) bool {
	s.dir.init()
	who := signInIdentity{userID: userID, guest: s.userTypeLocked(userID) == "Guest"}
	if spAppID != "" {
		who = signInIdentity{}
		for _, sp := range s.dir.sps {
			if strings.EqualFold(sp.AppID, spAppID) {
				sp := sp
				who = signInIdentity{sp: &sp, spInHome: sp.AppOwnerTenantID == "" || strings.EqualFold(sp.AppOwnerTenantID, s.opts.TenantID)}
			}
		}
		if who.sp == nil {
			return false
		}
	}
	return s.whatIfLocked(p, who, []string{resource}, signInConditions{ClientAppType: clientApp, Country: country}) == ""
}
