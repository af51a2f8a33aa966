package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"time"
)

// caPrefix is the Graph path family throttled at one request per second.
const caPrefix = "/identity/conditionalaccess"

// serveGraph records the request, then applies the knobs in order (hold,
// latency, token check, failure rules, Conditional Access throttle) before
// the endpoint runs.
func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request, ids reqIDs) {
	version := "v1.0"
	if strings.HasPrefix(r.URL.Path, "/beta") {
		version = "beta"
	}
	path := strings.TrimPrefix(r.URL.Path, "/"+version)
	if path == "" {
		path = "/"
	}
	body, encoding, bodyErr := readBody(r)
	authorized, authMsg := s.checkBearer(r.Header.Get("Authorization"))
	rec := Recorded{
		Method:          r.Method,
		Path:            path,
		Body:            body,
		ContentEncoding: encoding,
		Authorized:      authorized,
		At:              s.opts.Now(),
		Version:         version,
	}
	if r.URL.RawQuery != "" {
		rec.Path += "?" + r.URL.RawQuery
	}

	s.mu.Lock()
	s.requests = append(s.requests, rec)
	h := s.takeHoldLocked(r.Method, path)
	latency := s.latency
	s.mu.Unlock()

	if h != nil && h.landed {
		// Serve first, then hold the answer: the write takes effect whatever
		// becomes of the client.
		rec := httptest.NewRecorder()
		s.serveGraphNow(rec, r, ids, path, body, bodyErr, authorized, authMsg)
		if !h.wait(r, s.done) {
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	if h != nil && !h.wait(r, s.done) {
		return
	}
	if h != nil && h.late {
		latency = 0 // the client may be gone: nothing to wait with
	}
	if !s.sleep(r, latency) {
		return
	}
	s.serveGraphNow(w, r, ids, path, body, bodyErr, authorized, authMsg)
}

// wait holds a request until release or Close; false (drop the request)
// when its client went away meanwhile, unless the hold is late. The
// client's departure is checked first, so a request held past its client's
// death is never served, unless late.
func (h *hold) wait(r *http.Request, done <-chan struct{}) bool {
	close(h.arrived)
	select {
	case <-h.release:
	case <-done:
	case <-r.Context().Done():
		close(h.gone)
		select {
		case <-h.release:
		case <-done:
		}
		return h.late
	}
	return h.late || r.Context().Err() == nil
}

// serveGraphNow is the rest of a Graph request once held and delayed: the
// token check, the failure rules, the throttle and the endpoint.
func (s *Server) serveGraphNow(w http.ResponseWriter, r *http.Request, ids reqIDs, path string, body []byte, bodyErr error, authorized bool, authMsg string) {
	beta := strings.HasPrefix(r.URL.Path, "/beta")
	if !authorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="`+s.url+`/common/oauth2/authorize", client_id="`+graphAppID+`"`)
		s.graphError(w, ids, http.StatusUnauthorized, "InvalidAuthenticationToken", authMsg)
		return
	}
	if rule, ok := s.matchFailure(r.Method, path); ok {
		if rule.Hang {
			if rule.Landed {
				s.dispatch(httptest.NewRecorder(), r, ids, path, body, beta)
			}
			s.hang(r)
			return
		}
		if rule.RetryAfter != "" {
			w.Header().Set("Retry-After", rule.RetryAfter)
		}
		if rule.Status == http.StatusTooManyRequests {
			s.tooManyRequests(w, ids, rule.Code)
		} else {
			s.graphError(w, ids, rule.Status, rule.Code, rule.Message)
		}
		return
	}
	if hasPrefixFold(path, caPrefix) && s.throttled() {
		s.tooManyRequests(w, ids, "")
		return
	}
	if bodyErr != nil {
		s.graphError(w, ids, http.StatusBadRequest, "BadRequest", "Unable to read the request body: "+bodyErr.Error())
		return
	}
	s.dispatch(w, r, ids, path, body, beta)
}

// hang sends nothing until the client gives up or the server closes.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// checkBearer validates the Authorization header against issued tokens.
func (s *Server) checkBearer(h string) (bool, string) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
	tok = strings.TrimSpace(tok)
	if h == "" || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false, "Access token is empty."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.tokens[tok]
	switch {
	case !ok && !strings.Contains(tok, "."):
		return false, "IDX14100: JWT is not well formed, there are no dots (.). The token needs to be in JWS or JWE Compact Serialization Format."
	case !ok:
		return false, "IDX10511: Signature validation failed."
	case !s.opts.Now().Before(it.exp):
		return false, "Lifetime validation failed, the token is expired."
	}
	return true, ""
}

// bearerRoles returns the roles of the request's (already checked) token.
func (s *Server) bearerRoles(h string) []string {
	_, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[strings.TrimSpace(tok)].roles
}

func (s *Server) takeHoldLocked(method, path string) *hold {
	for i, h := range s.holds {
		if h.taken || (h.method != "" && !strings.EqualFold(h.method, method)) || !strings.HasPrefix(path, h.prefix) {
			continue
		}
		if h.skip > 0 {
			h.skip--
			continue
		}
		h.taken = true
		s.holds = append(s.holds[:i:i], s.holds[i+1:]...)
		return h
	}
	return nil
}

// matchFailure returns the first rule matching the request and uses up one
// of its Times.
func (s *Server) matchFailure(method, path string) (FailRule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.rules {
		if (r.Method != "" && !strings.EqualFold(r.Method, method)) || !strings.HasPrefix(path, r.PathPrefix) {
			continue
		}
		out := *r
		if r.Times > 0 {
			r.Times--
			if r.Times == 0 {
				s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
			}
		}
		if out.Status == 0 {
			out.Status = http.StatusInternalServerError
		}
		return out, true
	}
	return FailRule{}, false
}

// throttled admits at most one Conditional Access request per second.
func (s *Server) throttled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.caThrottle {
		return false
	}
	now := s.throttleNow()
	if !s.caLast.IsZero() && now.Sub(s.caLast) < time.Second {
		return true
	}
	s.caLast = now
	return false
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, ids reqIDs, path string, body []byte, beta bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	lower := make([]string, len(segs))
	for i, sg := range segs {
		lower[i] = strings.ToLower(sg)
	}
	route := strings.Join(lower, "/")
	if need := endpointRoles(r.Method, route); need != nil && !allowed(s.bearerRoles(r.Header.Get("Authorization")), need) {
		s.graphError(w, ids, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	methods := func(allowed ...string) bool {
		for _, m := range allowed {
			if r.Method == m {
				return true
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.graphError(w, ids, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
		return false
	}
	if s.serveDirectory(w, r, ids, segs, lower, body) {
		return
	}
	switch {
	case route == "policies/identitysecuritydefaultsenforcementpolicy":
		if methods(http.MethodGet, http.MethodPatch) {
			if r.Method == http.MethodGet {
				s.getSecurityDefaults(w)
			} else {
				s.patchSecurityDefaults(w, ids, body)
			}
		}
	case route == "admin/sharepoint/settings":
		if methods(http.MethodGet, http.MethodPatch) {
			if r.Method == http.MethodGet {
				s.getSharePoint(w)
			} else {
				s.patchSharePoint(w, ids, body)
			}
		}
	case route == "identity/conditionalaccess/policies":
		if methods(http.MethodGet) {
			s.listPolicies(w)
		}
	case len(segs) == 4 && strings.HasPrefix(route, "identity/conditionalaccess/policies/"):
		id := unquoteKey(segs[3])
		if methods(http.MethodGet, http.MethodPatch) {
			if r.Method == http.MethodGet {
				s.getPolicy(w, ids, id)
			} else {
				s.patchPolicy(w, ids, id, body)
			}
		}
	case len(segs) == 2 && lower[0] == "users" || len(segs) == 1 && strings.HasPrefix(lower[0], "users("):
		key := segs[len(segs)-1]
		if len(segs) == 1 {
			key = strings.TrimSuffix(segs[0][len("users("):], ")")
		}
		if methods(http.MethodGet) {
			s.getUser(w, r, ids, unquoteKey(key))
		}
	case route == "auditlogs/signins":
		if methods(http.MethodGet) {
			s.listSignIns(w, r, ids, beta)
		}
	default:
		s.graphError(w, ids, http.StatusNotFound, "UnknownError", "Resource not found for the segment '"+segs[len(segs)-1]+"'.")
	}
}

// unquoteKey undoes the ('key') syntax, doubled quotes included.
func unquoteKey(k string) string {
	k = strings.TrimSuffix(strings.TrimPrefix(k, "("), ")")
	if len(k) >= 2 && k[0] == '\'' && k[len(k)-1] == '\'' {
		k = strings.ReplaceAll(k[1:len(k)-1], "''", "'")
	}
	return k
}

func (s *Server) context(fragment string) string {
	return s.url + "/v1.0/$metadata#" + fragment
}

// decodeObject parses a PATCH body into its top-level properties and rejects
// properties the type does not have (annotations such as @odata.type pass).
func decodeObject(body []byte, typeName string, known map[string]bool) (map[string]json.RawMessage, string) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, "Empty Payload. JSON content expected."
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, "Invalid JSON. A JSON object was expected."
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "@") || strings.Contains(k, "@odata.") {
			continue
		}
		if !known[k] {
			return nil, "The property '" + k + "' does not exist on type 'microsoft.graph." + typeName + "'. Make sure to only use property names that are defined by the type."
		}
	}
	return obj, ""
}

func boolProp(obj map[string]json.RawMessage, name, typeName string) (*bool, string) {
	raw, ok := obj[name]
	if !ok {
		return nil, ""
	}
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil || string(raw) == "null" {
		return nil, "Cannot convert the literal '" + string(raw) + "' to the expected type 'Edm.Boolean' of property '" + name + "' on type 'microsoft.graph." + typeName + "'."
	}
	return &v, ""
}

// ---- security defaults -------------------------------------------------

const (
	securityDefaultsID          = "00000000-0000-0000-0000-000000000005"
	securityDefaultsDescription = "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. When enabled, these recommendations will be automatically enforced in your organization. Administrators and users will be better protected from common identity related attacks."
)

func (s *Server) getSecurityDefaults(w http.ResponseWriter) {
	s.mu.Lock()
	on := s.state.SecurityDefaults
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, orderedObject{
		{"@odata.context", s.context("policies/identitySecurityDefaultsEnforcementPolicy")},
		{"description", securityDefaultsDescription},
		{"displayName", "Security Defaults"},
		{"id", securityDefaultsID},
		{"isEnabled", on},
	})
}

var securityDefaultsProps = map[string]bool{"isEnabled": true, "displayName": true, "description": true, "id": true}

func (s *Server) patchSecurityDefaults(w http.ResponseWriter, ids reqIDs, body []byte) {
	const typeName = "identitySecurityDefaultsEnforcementPolicy"
	obj, msg := decodeObject(body, typeName, securityDefaultsProps)
	if msg != "" {
		s.graphError(w, ids, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	on, msg := boolProp(obj, "isEnabled", typeName)
	if msg != "" {
		s.graphError(w, ids, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	if on != nil {
		s.mu.Lock()
		if s.state.SecurityDefaults != *on {
			st := copyState(s.state)
			st.SecurityDefaults = *on
			s.commitLocked(st, "graph PATCH security defaults")
		}
		s.mu.Unlock()
	}
	w.Header().Del("Content-Type")
	w.WriteHeader(http.StatusNoContent)
}

// ---- SharePoint settings -----------------------------------------------

// sharePointFields are the sharepointSettings properties in the order Graph
// returns them; the two c2bot changes live in State, the rest in spExtra.
var sharePointFields = []string{
	"allowedDomainGuidsForSyncApp", "availableManagedPathsForSiteCreation",
	"deletedUserPersonalSiteRetentionPeriodInDays", "excludedFileExtensionsForSyncApp",
	"idleSessionSignOut", "imageTaggingOption", "isCommentingOnSitePagesEnabled",
	"isFileActivityNotificationEnabled", "isLegacyAuthProtocolsEnabled", "isLoopEnabled",
	"isMacSyncAppEnabled", "isRequireAcceptingUserToMatchInvitedUserEnabled",
	"isResharingByExternalUsersEnabled", "isSharePointMobileNotificationEnabled",
	"isSharePointNewsfeedEnabled", "isSiteCreationEnabled", "isSiteCreationUIEnabled",
	"isSitePagesCreationEnabled", "isSitesStorageLimitAutomatic", "isSyncButtonHiddenOnPersonalSite",
	"isUnmanagedSyncAppForTenantRestricted", "personalSiteDefaultStorageLimitInMB",
	"sharingAllowedDomainList", "sharingBlockedDomainList", "sharingCapability",
	"sharingDomainRestrictionMode", "siteCreationDefaultManagedPath",
	"siteCreationDefaultStorageLimitInMB", "tenantDefaultTimezone",
}

// sharePointReadOnly are accepted in a PATCH and ignored.
var sharePointReadOnly = map[string]bool{"availableManagedPathsForSiteCreation": true, "id": true}

const (
	spLegacy  = "isLegacyAuthProtocolsEnabled"
	spInvited = "isRequireAcceptingUserToMatchInvitedUserEnabled"
)

// defaultSharePointExtra is the documented example tenant.
func defaultSharePointExtra() map[string]any {
	const doc = `{
	"allowedDomainGuidsForSyncApp": ["bdd1ab9b-3fd0-4def-a761-ec8d7471732c", "ad31vb6b-5zd0-7tyg-m231-kj8d6578432c"],
	"availableManagedPathsForSiteCreation": ["/sites/", "/teams/"],
	"deletedUserPersonalSiteRetentionPeriodInDays": 344,
	"excludedFileExtensionsForSyncApp": [".md", ".git"],
	"idleSessionSignOut": {"isEnabled": true, "warnAfterInSeconds": 120, "signOutAfterInSeconds": 300},
	"imageTaggingOption": "basic",
	"isCommentingOnSitePagesEnabled": true,
	"isFileActivityNotificationEnabled": true,
	"isLoopEnabled": true,
	"isMacSyncAppEnabled": false,
	"isResharingByExternalUsersEnabled": true,
	"isSharePointMobileNotificationEnabled": true,
	"isSharePointNewsfeedEnabled": true,
	"isSiteCreationEnabled": true,
	"isSiteCreationUIEnabled": true,
	"isSitePagesCreationEnabled": true,
	"isSitesStorageLimitAutomatic": true,
	"isSyncButtonHiddenOnPersonalSite": true,
	"isUnmanagedSyncAppForTenantRestricted": true,
	"personalSiteDefaultStorageLimitInMB": 113664,
	"sharingAllowedDomainList": ["contoso.com", "fabrikam.com"],
	"sharingBlockedDomainList": ["contoso.com", "fabrikam.com"],
	"sharingCapability": "externalUserAndGuestSharing",
	"sharingDomainRestrictionMode": "allowList",
	"siteCreationDefaultManagedPath": "/sites/",
	"siteCreationDefaultStorageLimitInMB": 808034,
	"tenantDefaultTimezone": "(UTC-05:00) Eastern Time (US and Canada)"
}`
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		panic(err)
	}
	return m
}

func (s *Server) sharePointLocked() orderedObject {
	out := orderedObject{
		{"@odata.context", s.context("admin/sharepoint/settings/$entity")},
		{"@odata.type", "#microsoft.graph.sharepointSettings"},
	}
	for _, k := range sharePointFields {
		switch k {
		case spLegacy:
			out = append(out, field{k, s.state.LegacyAuth})
		case spInvited:
			out = append(out, field{k, s.state.InvitedMatch})
		default:
			out = append(out, field{k, s.spExtra[k]})
		}
	}
	return out
}

func (s *Server) getSharePoint(w http.ResponseWriter) {
	s.mu.Lock()
	out := s.sharePointLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

var sharePointProps = func() map[string]bool {
	m := map[string]bool{"id": true}
	for _, k := range sharePointFields {
		m[k] = true
	}
	return m
}()

func (s *Server) patchSharePoint(w http.ResponseWriter, ids reqIDs, body []byte) {
	const typeName = "sharepointSettings"
	obj, msg := decodeObject(body, typeName, sharePointProps)
	if msg != "" {
		s.graphError(w, ids, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	legacy, msg := boolProp(obj, spLegacy, typeName)
	if msg == "" {
		var invited *bool
		invited, msg = boolProp(obj, spInvited, typeName)
		if msg == "" {
			s.mu.Lock()
			defer s.mu.Unlock()
			extra := map[string]any{}
			for k, raw := range obj {
				if k == spLegacy || k == spInvited || sharePointReadOnly[k] || !sharePointProps[k] || string(raw) == "null" {
					continue
				}
				var v any
				if err := json.Unmarshal(raw, &v); err != nil || !sameKind(v, s.spExtra[k]) {
					msg = "Cannot convert the literal '" + string(raw) + "' to the type of property '" + k + "' on type 'microsoft.graph." + typeName + "'."
					break
				}
				extra[k] = v
			}
			if msg == "" {
				for k, v := range extra {
					s.spExtra[k] = v
				}
				st := copyState(s.state)
				if legacy != nil {
					st.LegacyAuth = *legacy
				}
				if invited != nil {
					st.InvitedMatch = *invited
				}
				if st.LegacyAuth != s.state.LegacyAuth || st.InvitedMatch != s.state.InvitedMatch {
					s.commitLocked(st, "graph PATCH sharepoint settings")
				}
				writeJSON(w, http.StatusOK, s.sharePointLocked())
				return
			}
		}
	}
	s.graphError(w, ids, http.StatusBadRequest, "BadRequest", msg)
}

// sameKind reports whether a new JSON value has the type of the stored one.
func sameKind(v, old any) bool {
	switch old.(type) {
	case bool:
		_, ok := v.(bool)
		return ok
	case float64:
		_, ok := v.(float64)
		return ok
	case string:
		_, ok := v.(string)
		return ok
	case []any:
		_, ok := v.([]any)
		return ok
	case map[string]any:
		_, ok := v.(map[string]any)
		return ok
	}
	return true
}

// ---- Conditional Access -------------------------------------------------

type caPolicyJSON struct {
	ID               string       `json:"id"`
	TemplateID       *string      `json:"templateId,omitempty"`
	DisplayName      string       `json:"displayName"`
	CreatedDateTime  *string      `json:"createdDateTime"`
	ModifiedDateTime *string      `json:"modifiedDateTime"`
	State            string       `json:"state"`
	SessionControls  any          `json:"sessionControls"`
	Conditions       caConditions `json:"conditions"`
	GrantControls    caGrant      `json:"grantControls"`
}

type caConditions struct {
	UserRiskLevels             []string       `json:"userRiskLevels,omitempty"`
	SignInRiskLevels           []string       `json:"signInRiskLevels"`
	ClientAppTypes             []string       `json:"clientAppTypes"`
	ServicePrincipalRiskLevels []string       `json:"servicePrincipalRiskLevels,omitempty"`
	Platforms                  any            `json:"platforms"`
	Locations                  any            `json:"locations"`
	Devices                    any            `json:"devices,omitempty"`
	ClientApplications         any            `json:"clientApplications,omitempty"`
	AuthenticationFlows        any            `json:"authenticationFlows,omitempty"`
	Applications               caApplications `json:"applications"`
	Users                      caUsers        `json:"users"`
}

type caApplications struct {
	IncludeApplications []string `json:"includeApplications"`
	ExcludeApplications []string `json:"excludeApplications"`
	IncludeUserActions  []string `json:"includeUserActions"`
}

type caUsers struct {
	IncludeUsers                 []string `json:"includeUsers"`
	ExcludeUsers                 []string `json:"excludeUsers"`
	IncludeGroups                []string `json:"includeGroups"`
	ExcludeGroups                []string `json:"excludeGroups"`
	IncludeRoles                 []string `json:"includeRoles"`
	ExcludeRoles                 []string `json:"excludeRoles"`
	IncludeGuestsOrExternalUsers any      `json:"includeGuestsOrExternalUsers,omitempty"`
	ExcludeGuestsOrExternalUsers any      `json:"excludeGuestsOrExternalUsers,omitempty"`
}

type caGrant struct {
	Operator                    string   `json:"operator"`
	BuiltInControls             []string `json:"builtInControls"`
	CustomAuthenticationFactors []string `json:"customAuthenticationFactors"`
	TermsOfUse                  []string `json:"termsOfUse"`
	AuthenticationStrength      any      `json:"authenticationStrength,omitempty"`
}

// graphTime is Graph's DateTimeOffset format with 7 fractional digits.
const graphTime = "2006-01-02T15:04:05.0000000Z"

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func (s *Server) policyJSONLocked(p Policy) caPolicyJSON {
	meta := s.policyMeta[p.ID]
	var created, modified *string
	if !meta.created.IsZero() {
		c := meta.created.UTC().Format(graphTime)
		created = &c
	}
	if !meta.modified.IsZero() {
		m := meta.modified.UTC().Format(graphTime)
		modified = &m
	}
	out := caPolicyJSON{
		ID:               p.ID,
		DisplayName:      p.DisplayName,
		CreatedDateTime:  created,
		ModifiedDateTime: modified,
		State:            p.State,
		Conditions: caConditions{
			SignInRiskLevels: []string{},
			ClientAppTypes:   nonNil(cloneStrings(p.ClientAppTypes)),
			Applications: caApplications{
				IncludeApplications: []string{"All"},
				ExcludeApplications: []string{},
				IncludeUserActions:  []string{},
			},
			Users: caUsers{
				IncludeUsers:  nonNil(cloneStrings(p.IncludeUsers)),
				ExcludeUsers:  nonNil(cloneStrings(p.ExcludeUsers)),
				IncludeGroups: []string{},
				ExcludeGroups: []string{},
				IncludeRoles:  []string{},
				ExcludeRoles:  []string{},
			},
		},
		GrantControls: caGrant{
			Operator:                    "OR",
			BuiltInControls:             policyGrant(p),
			CustomAuthenticationFactors: []string{},
			TermsOfUse:                  []string{},
		},
	}
	policyMoreJSON(&out, p)
	return out
}

func (s *Server) listPolicies(w http.ResponseWriter) {
	s.mu.Lock()
	value := make([]caPolicyJSON, 0, len(s.state.Policies))
	for _, p := range s.state.Policies {
		value = append(value, s.policyJSONLocked(p))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, orderedObject{
		{"@odata.context", s.context("identity/conditionalAccess/policies")},
		{"value", value},
	})
}

func (s *Server) policyIndexLocked(id string) int {
	for i, p := range s.state.Policies {
		if strings.EqualFold(p.ID, id) {
			return i
		}
	}
	return -1
}

func (s *Server) policyNotFound(w http.ResponseWriter, ids reqIDs, id string) {
	s.graphError(w, ids, http.StatusNotFound, "Request_ResourceNotFound",
		"Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
}

func (s *Server) getPolicy(w http.ResponseWriter, ids reqIDs, id string) {
	s.mu.Lock()
	i := s.policyIndexLocked(id)
	var out caPolicyJSON
	if i >= 0 {
		out = s.policyJSONLocked(s.state.Policies[i])
	}
	s.mu.Unlock()
	if i < 0 {
		s.policyNotFound(w, ids, id)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Context string `json:"@odata.context"`
		caPolicyJSON
	}{s.context("identity/conditionalAccess/policies/$entity"), out})
}

var caPolicyProps = map[string]bool{
	"id": true, "displayName": true, "createdDateTime": true, "modifiedDateTime": true, "state": true,
	"sessionControls": true, "conditions": true, "grantControls": true, "templateId": true,
}

// caPatch is the part of a conditionalAccessPolicy PATCH the sandbox honours.
type caPatch struct {
	DisplayName *string `json:"displayName"`
	State       *string `json:"state"`
	Conditions  *struct {
		ClientAppTypes *[]string `json:"clientAppTypes"`
		Users          *struct {
			IncludeUsers *[]string `json:"includeUsers"`
			ExcludeUsers *[]string `json:"excludeUsers"`
		} `json:"users"`
		ClientApplications *struct {
			IncludeServicePrincipals *[]string `json:"includeServicePrincipals"`
			ExcludeServicePrincipals *[]string `json:"excludeServicePrincipals"`
		} `json:"clientApplications"`
	} `json:"conditions"`
	GrantControls *struct {
		BuiltInControls *[]string `json:"builtInControls"`
	} `json:"grantControls"`
}

var clientAppTypes = map[string]bool{
	"all": true, "browser": true, "mobileAppsAndDesktopClients": true,
	"exchangeActiveSync": true, "easSupported": true, "other": true,
}

func validUserRef(v string) bool {
	switch v {
	case "All", "None", "GuestsOrExternalUsers":
		return true
	}
	return isGUID(v)
}

func (s *Server) patchPolicy(w http.ResponseWriter, ids reqIDs, id string, body []byte) {
	obj, msg := decodeObject(body, "conditionalAccessPolicy", caPolicyProps)
	if msg != "" {
		s.graphError(w, ids, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	raw, _ := json.Marshal(obj)
	var p caPatch
	if err := json.Unmarshal(raw, &p); err != nil {
		s.graphError(w, ids, http.StatusBadRequest, "BadRequest", "Request contains a property with an invalid value: "+err.Error())
		return
	}
	bad := func(m string) { s.graphError(w, ids, http.StatusBadRequest, "BadRequest", m) }
	if p.State != nil {
		if err := validatePolicy(Policy{ID: id, State: *p.State}); err != nil {
			bad("Requested value '" + *p.State + "' was not found in enum 'conditionalAccessPolicyState'.")
			return
		}
	}
	if p.Conditions != nil && p.Conditions.ClientAppTypes != nil {
		for _, c := range *p.Conditions.ClientAppTypes {
			if !clientAppTypes[c] {
				bad("Requested value '" + c + "' was not found in enum 'conditionalAccessClientApp'.")
				return
			}
		}
	}
	if p.Conditions != nil && p.Conditions.Users != nil {
		for _, list := range []*[]string{p.Conditions.Users.IncludeUsers, p.Conditions.Users.ExcludeUsers} {
			if list == nil {
				continue
			}
			for _, u := range *list {
				if !validUserRef(u) {
					bad("1038: The user '" + u + "' in conditions.users is not a valid object id; use 'All', 'None', 'GuestsOrExternalUsers' or a user object id.")
					return
				}
			}
		}
	}

	if p.Conditions != nil {
		if m := badServicePrincipalRefs(p.Conditions.ClientApplications); m != "" {
			bad(m)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.policyIndexLocked(id)
	if i < 0 {
		s.policyNotFound(w, ids, id)
		return
	}
	st := copyState(s.state)
	pol := &st.Policies[i]
	if p.DisplayName != nil {
		pol.DisplayName = *p.DisplayName
	}
	if p.State != nil {
		pol.State = *p.State
	}
	if c := p.Conditions; c != nil {
		if c.ClientAppTypes != nil {
			pol.ClientAppTypes = cloneStrings(*c.ClientAppTypes)
		}
		if c.Users != nil && c.Users.IncludeUsers != nil {
			pol.IncludeUsers = cloneStrings(*c.Users.IncludeUsers)
		}
		if c.Users != nil && c.Users.ExcludeUsers != nil {
			pol.ExcludeUsers = cloneStrings(*c.Users.ExcludeUsers)
		}
		patchClientApplications(pol, c.ClientApplications)
	}
	if g := p.GrantControls; g != nil && g.BuiltInControls != nil {
		pol.Block = false
		for _, c := range *g.BuiltInControls {
			if strings.EqualFold(c, "block") {
				pol.Block = true
			}
		}
		if pol.Grant != nil {
			pol.Grant = cloneStrings(*g.BuiltInControls)
		}
	}
	meta := s.policyMeta[pol.ID]
	meta.modified = s.opts.Now()
	s.policyMeta[pol.ID] = meta
	s.commitLocked(st, "graph PATCH conditional access policy "+pol.ID)
	w.Header().Del("Content-Type")
	w.WriteHeader(http.StatusNoContent)
}

// ---- users -------------------------------------------------------------

// userFields are the default user properties, in Graph's order.
var userFields = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}

var userProps = func() map[string]bool {
	m := map[string]bool{"accountEnabled": true, "userType": true}
	for _, f := range userFields {
		m[f] = true
	}
	return m
}()

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, ids reqIDs, key string) {
	var u *person
	for _, p := range s.people() {
		if strings.EqualFold(p.id, key) || strings.EqualFold(p.upn, key) {
			u = &p
			break
		}
	}
	if u == nil {
		s.graphError(w, ids, http.StatusNotFound, "Request_ResourceNotFound",
			"Resource '"+key+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	sel := userFields
	ctx := "users/$entity"
	if q := r.URL.Query().Get("$select"); q != "" {
		sel = nil
		for _, f := range strings.Split(q, ",") {
			f = strings.TrimSpace(f)
			if !userProps[f] {
				s.graphError(w, ids, http.StatusBadRequest, "Request_BadRequest", "Could not find a property named '"+f+"' on type 'microsoft.graph.user'.")
				return
			}
			sel = append(sel, f)
		}
		ctx = "users(" + strings.Join(sel, ",") + ")/$entity"
	}
	values := map[string]any{
		"businessPhones":    []string{},
		"displayName":       u.name,
		"givenName":         u.given,
		"jobTitle":          nil,
		"mail":              u.upn,
		"mobilePhone":       nil,
		"officeLocation":    nil,
		"preferredLanguage": "en-US",
		"surname":           u.surname,
		"userPrincipalName": u.upn,
		"id":                u.id,
		"accountEnabled":    true,
		"userType":          s.userTypeOf(u.id),
	}
	out := orderedObject{{"@odata.context", s.context(ctx)}}
	for _, f := range sel {
		out = append(out, field{f, values[f]})
	}
	writeJSON(w, http.StatusOK, out)
}

// queryInt parses a positive integer query option.
func queryInt(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	return n, err == nil && n > 0
}
