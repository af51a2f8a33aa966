// Package sandbox is a local stand-in for a Microsoft 365 tenant: an HTTPS
// server on loopback (self-signed certificate generated at start) that speaks
// the Microsoft Graph v1.0 endpoints c2bot uses and the Entra ID OpenID
// configuration and token endpoints, keeps tenant state, and generates the
// backup tool's sign-ins: failing while legacy auth is blocked, succeeding
// once a change has propagated. Knobs add latency, 429s, 5xx and held-open
// requests for tests. `c2bot demo` points the production Graph client and
// MSAL at it.
package sandbox

import (
	"net/http"
	"time"
)

// Defaults the sandbox accepts when Options leaves them empty.
const (
	DefaultTenantID     = "c2b0c2b0-0000-4000-8000-000000000001"
	DefaultClientID     = "c2b0c2b0-0000-4000-8000-00000000c11e"
	DefaultClientSecret = "sandbox-client-secret"
	DefaultToolAccount  = "svc-backup@contoso.onmicrosoft.com"
)

// Policy is a Conditional Access policy as the sandbox stores it; it is
// served in Graph's conditionalAccessPolicy JSON shape.
type Policy struct {
	ID             string
	DisplayName    string
	State          string   // enabled, disabled, enabledForReportingButNotEnforced
	ClientAppTypes []string // all, browser, mobileAppsAndDesktopClients, exchangeActiveSync, other
	IncludeUsers   []string // "All" or user object ids
	ExcludeUsers   []string
	Block          bool // grantControls.builtInControls = ["block"] (else ["mfa"])
}

// State is the tenant's current settings.
type State struct {
	SecurityDefaults bool // identitySecurityDefaultsEnforcementPolicy.isEnabled
	LegacyAuth       bool // sharepointSettings.isLegacyAuthProtocolsEnabled
	InvitedMatch     bool // sharepointSettings.isRequireAcceptingUserToMatchInvitedUserEnabled
	Policies         []Policy
	// P1 is whether the tenant has an Entra ID P1 licence; without it
	// /auditLogs/signIns answers 403 as Graph does.
	P1 bool
}

// Options configures Start. Zero values take the defaults above.
type Options struct {
	Addr         string // default "127.0.0.1:0"
	TenantID     string
	ClientID     string
	ClientSecret string
	// ClientCertPEM, when set, lets the client sign in with a certificate
	// (a client_assertion signed by this certificate's key) as well.
	ClientCertPEM []byte
	ToolAccount   string
	// ToolAccountID is the tool account's object id; default a fixed GUID.
	ToolAccountID string
	// Initial is the starting state; nil means the blocked tenant of the
	// demo: security defaults on, legacy auth off, invited-account match on,
	// one report-only Conditional Access policy blocking legacy auth, P1.
	Initial *State
	// Propagation is how long after a change the tool's sign-ins start to
	// succeed; zero means immediately.
	Propagation time.Duration
	// SignInEvery is how often the tool tries to sign in; default 15 minutes.
	SignInEvery time.Duration
	Now         func() time.Time
}

// FailRule makes matching requests fail.
type FailRule struct {
	Method     string // "" matches any
	PathPrefix string // matched against the path after /v1.0 ("/admin/sharepoint/settings")
	Status     int    // 429, 500, 503, 403, …
	RetryAfter string // Retry-After header value; "" sends none
	Code       string // Graph error code in the body; default from the status
	Times      int    // how many requests fail; <= 0 means until ClearFailures
}

// Recorded is one request the sandbox received.
type Recorded struct {
	Method          string
	Path            string // after /v1.0, with the raw query
	Body            []byte // decoded (gzip undone)
	ContentEncoding string
	Authorized      bool // carried a valid bearer token
	At              time.Time
}

// Server is a running sandbox tenant.
type Server struct{}

// Start listens, generates the certificate and serves until Close.
func Start(opts Options) (*Server, error) { panic("not implemented") }

// URL is the base URL for both Graph (C2_GRAPH_URL) and sign-in (C2_AUTHORITY_URL).
func (s *Server) URL() string { panic("not implemented") }

// Client returns an HTTP client that trusts the sandbox certificate.
func (s *Server) Client() *http.Client { panic("not implemented") }

// CertPEM returns the server certificate in PEM, for a process that must trust it.
func (s *Server) CertPEM() []byte { panic("not implemented") }

// Close stops the server and releases held requests.
func (s *Server) Close() error { panic("not implemented") }

// State returns a copy of the current tenant state.
func (s *Server) State() State { panic("not implemented") }

// SetState replaces the tenant state (a change "outside c2bot").
func (s *Server) SetState(st State) { panic("not implemented") }

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) { panic("not implemented") }

// Fail adds a failure rule; rules are tried in order.
func (s *Server) Fail(r FailRule) { panic("not implemented") }

// ClearFailures removes all failure rules.
func (s *Server) ClearFailures() { panic("not implemented") }

// Hold makes the next request matching method and path prefix wait until
// release is called (or the server closes) before it is served. held is
// closed when such a request has arrived.
func (s *Server) Hold(method, pathPrefix string) (held <-chan struct{}, release func()) {
	panic("not implemented")
}

// Requests returns every Graph request received so far, in order.
func (s *Server) Requests() []Recorded { panic("not implemented") }
