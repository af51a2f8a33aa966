package sandbox

import (
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition (RFC 7515)
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Entra ID answers: OpenID configuration, instance discovery, JWKS and the
// v2.0 token endpoint (client credentials with a secret or a certificate).

const (
	// defaultTokenLifetime is how long Entra ID's app tokens live.
	defaultTokenLifetime = 3599 * time.Second
	// assertionType is the only client_assertion_type Entra accepts.
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// graphAppID is Microsoft Graph's application id, accepted as a resource.
	graphAppID = "00000003-0000-0000-c000-000000000000"
)

func (s *Server) serveEntra(w http.ResponseWriter, r *http.Request, ids reqIDs) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 3 && strings.EqualFold(parts[0], "common") && parts[1] == "discovery" && parts[2] == "instance":
		s.instanceDiscovery(w, r)
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		s.openIDConfiguration(w, r, parts[0], ids)
	case len(parts) == 4 && parts[1] == "discovery" && parts[2] == "v2.0" && parts[3] == "keys":
		if s.tenantKind(parts[0]) == "" {
			s.entraError(w, ids, http.StatusBadRequest, "invalid_tenant", 90002, unknownTenant(parts[0]))
			return
		}
		writeJSON(w, http.StatusOK, map[string][]any{"keys": {}})
	case len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token":
		s.token(w, r, parts[0], ids)
	default:
		s.graphError(w, ids, http.StatusNotFound, "UnknownError", "Resource not found.")
	}
}

// tenantKind is "tenant" for the sandbox tenant (by id or by the tool
// account's domain), "multi" for common/organizations, "" when unknown.
func (s *Server) tenantKind(t string) string {
	switch {
	case strings.EqualFold(t, s.opts.TenantID), strings.EqualFold(t, s.domain()):
		return "tenant"
	case strings.EqualFold(t, "common"), strings.EqualFold(t, "organizations"):
		return "multi"
	}
	return ""
}

func (s *Server) domain() string {
	if i := strings.LastIndexByte(s.opts.ToolAccount, '@'); i >= 0 {
		return s.opts.ToolAccount[i+1:]
	}
	return "contoso.onmicrosoft.com"
}

func unknownTenant(t string) string {
	return fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", t)
}

func (s *Server) issuer() string { return s.url + "/" + s.opts.TenantID + "/v2.0" }

func (s *Server) tokenEndpoint() string { return s.url + "/" + s.opts.TenantID + "/oauth2/v2.0/token" }

// openIDConfiguration serves the v2.0 metadata document as Entra does; MSAL
// reads authorization_endpoint, token_endpoint and issuer, and checks that
// the issuer's host is the authority's.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request, tenant string, ids reqIDs) {
	if r.Method != http.MethodGet {
		s.entraError(w, ids, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts GET requests.")
		return
	}
	var pathTenant, issuerTenant string
	switch s.tenantKind(tenant) {
	case "tenant":
		pathTenant, issuerTenant = s.opts.TenantID, s.opts.TenantID
	case "multi":
		pathTenant, issuerTenant = strings.ToLower(tenant), "{tenantid}"
	default:
		s.entraError(w, ids, http.StatusBadRequest, "invalid_tenant", 90002, unknownTenant(tenant))
		return
	}
	base := s.url + "/" + pathTenant
	host := strings.TrimPrefix(s.url, "https://")
	writeJSON(w, http.StatusOK, orderedObject{
		{"token_endpoint", base + "/oauth2/v2.0/token"},
		{"token_endpoint_auth_methods_supported", []string{"client_secret_post", "private_key_jwt", "client_secret_basic"}},
		{"jwks_uri", base + "/discovery/v2.0/keys"},
		{"response_modes_supported", []string{"query", "fragment", "form_post"}},
		{"subject_types_supported", []string{"pairwise"}},
		{"id_token_signing_alg_values_supported", []string{"RS256"}},
		{"response_types_supported", []string{"code", "id_token", "code id_token", "id_token token"}},
		{"scopes_supported", []string{"openid", "profile", "email", "offline_access"}},
		{"issuer", s.url + "/" + issuerTenant + "/v2.0"},
		{"request_uri_parameter_supported", false},
		{"userinfo_endpoint", s.url + "/oidc/userinfo"},
		{"authorization_endpoint", base + "/oauth2/v2.0/authorize"},
		{"device_authorization_endpoint", base + "/oauth2/v2.0/devicecode"},
		{"http_logout_supported", true},
		{"frontchannel_logout_supported", true},
		{"end_session_endpoint", base + "/oauth2/v2.0/logout"},
		{"claims_supported", []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"}},
		{"kerberos_endpoint", base + "/kerberos"},
		{"tenant_region_scope", "EU"},
		{"cloud_instance_name", "microsoftonline.com"},
		{"cloud_graph_host_name", host},
		{"msgraph_host", host},
		{"rbac_url", "https://pas.windows.net"},
	})
}

// instanceDiscovery answers /common/discovery/instance (api-version 1.1)
// for an authorize endpoint on this server, naming the server as its own
// only alias. MSAL with instance discovery disabled never calls it.
func (s *Server) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	host := strings.TrimPrefix(s.url, "https://")
	tenant := "common"
	if ae := r.URL.Query().Get("authorization_endpoint"); ae != "" {
		u, err := url.Parse(ae)
		if err != nil || !strings.EqualFold(u.Host, host) {
			writeJSON(w, http.StatusBadRequest, orderedObject{
				{"error", "invalid_instance"},
				{"error_description", "AADSTS50049: Unknown or invalid instance."},
				{"error_codes", []int{50049}},
			})
			return
		}
		if p := strings.Split(strings.Trim(u.Path, "/"), "/"); len(p) > 0 && p[0] != "" {
			tenant = p[0]
		}
	}
	writeJSON(w, http.StatusOK, orderedObject{
		{"tenant_discovery_endpoint", s.url + "/" + tenant + "/v2.0/.well-known/openid-configuration"},
		{"api-version", "1.1"},
		{"metadata", []orderedObject{{
			{"preferred_network", host},
			{"preferred_cache", host},
			{"aliases", []string{host}},
		}}},
	})
}

// entraError writes the OAuth error shape Entra ID uses.
func (s *Server) entraError(w http.ResponseWriter, ids reqIDs, status int, code string, aadsts int, desc string) {
	now := s.opts.Now().UTC()
	writeJSON(w, status, orderedObject{
		{"error", code},
		{"error_description", fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			aadsts, desc, ids.requestID, ids.clientRequestID, now.Format("2006-01-02 15:04:05Z"))},
		{"error_codes", []int{aadsts}},
		{"timestamp", now.Format("2006-01-02 15:04:05Z")},
		{"trace_id", ids.requestID},
		{"correlation_id", ids.clientRequestID},
		{"error_uri", fmt.Sprintf("%s/error?code=%d", s.url, aadsts)},
	})
}

// token is the client-credentials grant of /{tenant}/oauth2/v2.0/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request, tenant string, ids reqIDs) {
	if r.Method != http.MethodPost {
		s.entraError(w, ids, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a "+r.Method+" request.")
		return
	}
	if s.tenantKind(tenant) != "tenant" {
		s.entraError(w, ids, http.StatusBadRequest, "invalid_request", 90002, unknownTenant(tenant))
		return
	}
	if rule, ok := s.matchTokenFailure(); ok {
		if rule.Hang {
			s.hang(r)
			return
		}
		// An outage as Entra reports it: temporarily_unavailable, AADSTS90033
		// MsodsServiceUnavailable
		// (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes).
		if rule.RetryAfter != "" {
			w.Header().Set("Retry-After", rule.RetryAfter)
		}
		s.entraError(w, ids, rule.Status, "temporarily_unavailable", 90033,
			"The Microsoft Online Directory Service (MSODS) isn't available.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.entraError(w, ids, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm
	for _, p := range []string{"grant_type", "client_id", "scope"} {
		if form.Get(p) == "" {
			s.entraError(w, ids, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: '"+p+"'.")
			return
		}
	}
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		s.entraError(w, ids, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+gt+"'.")
		return
	}
	clientID := form.Get("client_id")
	if !strings.EqualFold(clientID, s.opts.ClientID) {
		s.entraError(w, ids, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			clientID, s.opts.TenantID))
		return
	}
	if code, desc := s.checkScope(form.Get("scope")); code != 0 {
		errName := "invalid_scope"
		if code == 500011 {
			errName = "invalid_resource"
		}
		s.entraError(w, ids, http.StatusBadRequest, errName, code, desc)
		return
	}

	secret := form.Get("client_secret")
	assertion := form.Get("client_assertion")
	switch {
	case secret != "" && assertion != "":
		s.entraError(w, ids, http.StatusBadRequest, "invalid_request", 90023, "Only one of client_secret and client_assertion may be sent.")
		return
	case secret != "":
		if !equalSecret(secret, s.opts.ClientSecret) {
			s.entraError(w, ids, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.opts.ClientID))
			return
		}
	case assertion != "":
		if at := form.Get("client_assertion_type"); at != assertionType {
			s.entraError(w, ids, http.StatusBadRequest, "invalid_request", 50027, "Invalid client_assertion_type '"+at+"'.")
			return
		}
		if code, desc := s.checkAssertion(assertion); code != 0 {
			s.entraError(w, ids, http.StatusUnauthorized, "invalid_client", code, desc)
			return
		}
	default:
		s.entraError(w, ids, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}

	s.mu.Lock()
	now := s.opts.Now()
	for t, it := range s.tokens { // forget long-expired tokens
		if now.After(it.exp.Add(24 * time.Hour)) {
			delete(s.tokens, t)
		}
	}
	roles := s.roles
	if roles == nil {
		roles = AllRoles
	}
	lifetime := s.opts.TokenLifetime
	tok := s.newAccessToken(now, lifetime, roles)
	s.tokens[tok] = issuedToken{exp: now.Add(lifetime), roles: slices.Clone(roles)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, orderedObject{
		{"token_type", "Bearer"},
		{"expires_in", int(lifetime / time.Second)},
		{"ext_expires_in", int(lifetime / time.Second)},
		{"access_token", tok},
	})
}

// matchTokenFailure returns the first token-endpoint failure rule and uses
// up one of its Times.
func (s *Server) matchTokenFailure() (FailRule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokenFails) == 0 {
		return FailRule{}, false
	}
	r := s.tokenFails[0]
	out := *r
	if r.Times > 0 {
		r.Times--
		if r.Times == 0 {
			s.tokenFails = s.tokenFails[1:]
		}
	}
	if out.Status == 0 {
		out.Status = http.StatusServiceUnavailable
	}
	return out, true
}

// checkScope accepts exactly one resource scope ending in /.default (the
// sandbox, or Microsoft Graph by URL or app id), plus the OpenID scopes MSAL
// appends.
func (s *Server) checkScope(scope string) (int, string) {
	var resources []string
	for _, sc := range strings.Fields(scope) {
		switch sc {
		case "openid", "profile", "offline_access", "email":
			continue
		}
		resources = append(resources, sc)
	}
	if len(resources) != 1 || !strings.HasSuffix(resources[0], "/.default") {
		return 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
	}
	res := strings.TrimRight(strings.TrimSuffix(resources[0], "/.default"), "/")
	for _, ok := range []string{s.url, "https://graph.microsoft.com", graphAppID} {
		if strings.EqualFold(res, ok) {
			return 0, ""
		}
	}
	return 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", res, s.opts.TenantID)
}

func equalSecret(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	h := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], h[:]) == 1
}

// checkAssertion verifies a client_assertion: RS256 or PS256 signed by the
// key of Options.ClientCertPEM, aud the token endpoint (or the issuer),
// iss = sub = the client id, exp in the future. The time check uses the wall
// clock, because the client signs with its own clock.
func (s *Server) checkAssertion(assertion string) (int, string) {
	if s.clientCert == nil {
		return 700027, "The certificate with identifier used to sign the client assertion is not registered on application."
	}
	var thumbMismatch bool
	tok, err := jwt.Parse(assertion, func(t *jwt.Token) (any, error) {
		if v, ok := t.Header["x5t#S256"].(string); ok {
			sum := sha256.Sum256(s.clientCert.Raw)
			if !thumbprintMatches(v, sum[:]) {
				thumbMismatch = true
				return nil, errors.New("unknown x5t#S256")
			}
		} else if v, ok := t.Header["x5t"].(string); ok {
			sum := sha1.Sum(s.clientCert.Raw) //nolint:gosec // thumbprint, not a signature
			if !thumbprintMatches(v, sum[:]) {
				thumbMismatch = true
				return nil, errors.New("unknown x5t")
			}
		}
		return s.clientCert.PublicKey, nil
	},
		jwt.WithValidMethods([]string{"RS256", "PS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(time.Minute),
		jwt.WithTimeFunc(time.Now),
	)
	switch {
	case thumbMismatch:
		return 700027, "The certificate with identifier used to sign the client assertion is not registered on application."
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return 700024, "Client assertion is not within its valid time range."
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return 700027, "Client assertion contains an invalid signature."
	case err != nil:
		return 50027, "JWT token is invalid or malformed."
	}
	claims, _ := tok.Claims.(jwt.MapClaims)
	aud, _ := claims.GetAudience()
	audOK := false
	for _, a := range aud {
		if strings.EqualFold(a, s.tokenEndpoint()) || strings.EqualFold(a, s.issuer()) {
			audOK = true
		}
	}
	if !audOK {
		return 700212, fmt.Sprintf("No matching federated identity record found for presented assertion audience '%s'.", strings.Join(aud, ","))
	}
	iss, _ := claims.GetIssuer()
	sub, _ := claims.GetSubject()
	if !strings.EqualFold(iss, s.opts.ClientID) || !strings.EqualFold(sub, s.opts.ClientID) {
		return 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
	}
	return 0, ""
}

func thumbprintMatches(header string, sum []byte) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(header); err == nil && subtle.ConstantTimeCompare(b, sum) == 1 {
			return true
		}
	}
	return false
}
