// Package sandbox is a local stand-in for a Microsoft 365 tenant: an HTTPS
// server on loopback (self-signed certificate generated at start) that speaks
// the Microsoft Graph v1.0 endpoints c2bot uses and the Entra ID OpenID
// configuration and token endpoints, keeps tenant state, and generates the
// backup tool's sign-ins as Microsoft would on the clock's date: a legacy
// tool's Exchange basic auth never succeeds from 2022-10-01 and its
// SharePoint IDCRL never from 2026-05-01, whatever is PATCHed; Security
// defaults and Conditional Access fail the rest with Entra's error codes,
// until a change has propagated. A delegated or app tool (Options.ToolAuth)
// signs in with modern auth; an app's sign-ins are service-principal
// sign-ins on Graph beta. Scenarios (scenarios.go) are ready-made tenants.
// Knobs add latency, 429s, 5xx and held-open requests for tests.
// `c2bot demo` points the production Graph client and MSAL at it.
package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
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
	// PolicyMore holds the other conditions and grant controls (directory.go);
	// its zero value keeps the shape above.
	PolicyMore
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
	// AllowLegacyAuthProtocolsEnabledSetting is SharePoint's PowerShell-only
	// switch (Set-SPOTenant -AllowLegacyAuthProtocolsEnabledSetting, MC1184649):
	// from 2026-02-16 to 2026-04-30 IDCRL works only with it and LegacyAuth
	// both on. Graph has no such property, so only SetState changes it.
	AllowLegacyAuthProtocolsEnabledSetting bool
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
	// ToolAuth is how the tool signs in: ToolLegacy (default: basic auth to
	// Exchange, IDCRL to SharePoint), ToolDelegated (modern auth as the tool
	// account with its password) or ToolApp (its own app registration
	// ToolAppID; its sign-ins are service-principal sign-ins).
	ToolAuth  string
	ToolAppID string // default DefaultToolAppID
	// Roles is the roles claim (application permissions) of the access
	// tokens issued; nil means AllRoles. Endpoints refuse tokens without
	// the roles they need (403). SetRoles changes it later.
	Roles []string
	// TokenLifetime is how long access tokens live on the Now clock;
	// default 3599 s as in Entra ID. Tests that move Now far ahead while
	// MSAL keeps its cached token (on the wall clock) make it longer.
	TokenLifetime time.Duration
	// Now is the clock: the sign-ins follow Microsoft's rules on its date.
	Now func() time.Time
}

// FailRule makes matching requests fail.
type FailRule struct {
	Method     string // "" matches any
	PathPrefix string // matched against the path after /v1.0 ("/admin/sharepoint/settings")
	Status     int    // 429, 500, 503, 403, …
	RetryAfter string // Retry-After header value; "" sends none
	Code       string // Graph error code in the body; default from the status
	Message    string // Graph error message in the body; default from the status
	Times      int    // how many requests fail; <= 0 means until ClearFailures
	// Hang, instead of an error answer, sends nothing until the client gives
	// up (its timeout) or the server closes; Status is then ignored. The
	// endpoint does not run, unless Landed: then a write takes effect and
	// only its answer never comes.
	Hang   bool
	Landed bool
}

// HoldSpec chooses the request Hold holds.
type HoldSpec struct {
	Method     string // "" matches any
	PathPrefix string // matched against the path after /v1.0
	// Skip lets this many matching requests through before the one held.
	Skip int
	// Landed serves the held request first (a write takes effect) and
	// holds only its answer; otherwise it is held before it is served.
	Landed bool
	// Late serves a request held before it is served at release even when
	// its client has gone: a write that lands after the caller gave up.
	Late bool
}

// Held is a request held by HoldRequest.
type Held struct{ h *hold }

// Arrived is closed when the held request has arrived (and, with Landed,
// has been served).
func (h Held) Arrived() <-chan struct{} { return h.h.arrived }

// Gone is closed when the held request's client has gone away (its
// connection closed or it gave up) while the request was held. A request
// whose client has gone is dropped at release (unless Late): held before
// being served, it changes nothing.
func (h Held) Gone() <-chan struct{} { return h.h.gone }

// Release lets the held request go on; calling it again does nothing.
func (h Held) Release() { h.h.releaseOnce.Do(func() { close(h.h.release) }) }

// Change is one entry of the tenant's history: the state after a change.
type Change struct {
	At     time.Time
	Source string // "graph PATCH security defaults", "outside change", …
	State  State
}

// Recorded is one request the sandbox received.
type Recorded struct {
	Method          string
	Path            string // after /v1.0, with the raw query
	Body            []byte // decoded (gzip undone)
	ContentEncoding string
	Authorized      bool // carried a valid bearer token
	At              time.Time
	// Version is "v1.0" or "beta" (Path is what follows it).
	Version string
}

// Server is a running sandbox tenant. All methods are safe for concurrent use.
//
// A Graph request (/v1.0/…) is recorded on arrival, then goes through, in
// order: a matching Hold, the latency, the bearer-token check (401
// InvalidAuthenticationToken), the failure rules, the Conditional Access
// throttle (see SetCAThrottle), and finally the endpoint. Access tokens live
// 3599 s on the Options.Now clock: a test that moves that clock more than an
// hour ahead must fetch a new token (MSAL, on the wall clock, would keep
// using the old one). Client assertions are checked against the wall clock.
type Server struct {
	opts       Options
	url        string
	ln         net.Listener
	srv        *http.Server
	certPEM    []byte
	pool       *x509.CertPool
	clientCert *x509.Certificate // parsed Options.ClientCertPEM, nil when none
	done       chan struct{}     // closed by Close
	closeOnce  sync.Once

	// throttleNow is the clock of the Conditional Access throttle: a rate
	// limit is about real time, whatever Options.Now says.
	throttleNow func() time.Time

	mu         sync.Mutex
	initial    State
	history    []stateChange // every change, oldest first
	state      State
	spExtra    map[string]any         // the SharePoint settings c2bot does not track
	policyMeta map[string]policyMeta  // timestamps per Conditional Access policy id
	tokens     map[string]issuedToken // issued access token → expiry (sandbox clock) and roles
	roles      []string               // roles claim of new tokens; nil means AllRoles
	latency    time.Duration
	rules      []*FailRule
	tokenFails []*FailRule // failure rules of the token endpoint
	holds      []*hold
	requests   []Recorded
	caThrottle bool
	caLast     time.Time
	dir        directory // groups, roles, service principals, user types (directory.go)
}

// stateChange is one entry of the tenant's history.
type stateChange struct {
	at     time.Time
	state  State
	source string // "graph PATCH …" or "outside change"
}

type policyMeta struct {
	created  time.Time
	modified time.Time // zero: never modified
}

type hold struct {
	method, prefix string
	skip           int
	landed         bool
	late           bool
	taken          bool
	arrived        chan struct{}
	gone           chan struct{}
	release        chan struct{}
	releaseOnce    sync.Once
}

// Default object ids used when Options leaves them empty.
const (
	// DefaultToolAccountID is the tool account's object id.
	DefaultToolAccountID = "5d7b3c1e-9a2f-4e8b-b6c4-0c2b0000b4c7"
	// DefaultPolicyID is the id of the demo's "Block legacy authentication"
	// Conditional Access policy.
	DefaultPolicyID = "0b2282f9-2862-4178-88b5-d79340b3c2b0"
)

// DefaultState is the demo tenant that blocks the backup tool: security
// defaults on, SharePoint legacy auth off, invited-account match on, a
// report-only Conditional Access policy that blocks legacy clients, P1.
func DefaultState() State {
	return State{
		SecurityDefaults: true,
		LegacyAuth:       false,
		InvitedMatch:     true,
		Policies: []Policy{{
			ID:             DefaultPolicyID,
			DisplayName:    "Block legacy authentication",
			State:          "enabledForReportingButNotEnforced",
			ClientAppTypes: []string{"exchangeActiveSync", "other"},
			IncludeUsers:   []string{"All"},
			ExcludeUsers:   []string{},
			Block:          true,
		}},
		P1: true,
	}
}

// Start listens, generates the certificate and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.ToolAccount == "" {
		opts.ToolAccount = DefaultToolAccount
	}
	if opts.ToolAccountID == "" {
		opts.ToolAccountID = DefaultToolAccountID
	}
	switch opts.ToolAuth {
	case "":
		opts.ToolAuth = ToolLegacy
	case ToolLegacy, ToolDelegated, ToolApp:
	default:
		return nil, fmt.Errorf("sandbox tool auth %q: want %s, %s or %s", opts.ToolAuth, ToolLegacy, ToolDelegated, ToolApp)
	}
	if opts.ToolAppID == "" {
		opts.ToolAppID = DefaultToolAppID
	}
	if opts.SignInEvery <= 0 {
		opts.SignInEvery = 15 * time.Minute
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = defaultTokenLifetime
	}
	if opts.Propagation < 0 {
		opts.Propagation = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	initial := DefaultState()
	if opts.Initial != nil {
		initial = copyState(*opts.Initial)
	}
	for _, p := range initial.Policies {
		if err := validatePolicy(p); err != nil {
			return nil, fmt.Errorf("sandbox initial state: %w", err)
		}
	}

	s := &Server{
		opts:        opts,
		done:        make(chan struct{}),
		throttleNow: time.Now,
		initial:     initial,
		state:       copyState(initial),
		spExtra:     defaultSharePointExtra(),
		policyMeta:  map[string]policyMeta{},
		tokens:      map[string]issuedToken{},
		roles:       slices.Clone(opts.Roles),
		caThrottle:  true,
	}
	if len(opts.ClientCertPEM) > 0 {
		c, err := parseClientCert(opts.ClientCertPEM)
		if err != nil {
			return nil, fmt.Errorf("sandbox client certificate: %w", err)
		}
		s.clientCert = c
	}
	created := opts.Now().Add(-90 * 24 * time.Hour).UTC().Truncate(time.Second)
	for _, p := range initial.Policies {
		s.policyMeta[p.ID] = policyMeta{created: created}
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox listen: %w", err)
	}
	tlsCert, certPEM, err := selfSignedCert()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("sandbox certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	s.certPEM = certPEM
	s.pool = pool
	s.ln = ln
	s.url = "https://" + urlHost(ln.Addr())
	s.srv = &http.Server{
		Handler:           s.routes(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go s.srv.ServeTLS(ln, "", "") //nolint:errcheck // returns ErrServerClosed on Close
	return s, nil
}

func urlHost(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// URL is the base URL for both Graph (C2_GRAPH_URL) and sign-in (C2_AUTHORITY_URL).
func (s *Server) URL() string { return s.url }

// Client returns an HTTP client that trusts the sandbox certificate.
func (s *Server) Client() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// CertPEM returns the server certificate in PEM, for a process that must trust it.
func (s *Server) CertPEM() []byte { return append([]byte(nil), s.certPEM...) }

// Close stops the server and releases held requests.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
	})
	return err
}

// State returns a copy of the current tenant state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyState(s.state)
}

// SetState replaces the tenant state (a change "outside c2bot"). The change
// is recorded in the history the sign-in generator reads, at Options.Now.
func (s *Server) SetState(st State) {
	st = copyState(st)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now().UTC()
	for _, p := range st.Policies {
		if _, ok := s.policyMeta[p.ID]; !ok {
			s.policyMeta[p.ID] = policyMeta{created: now}
		}
	}
	s.commitLocked(st, "outside change")
}

// commitLocked makes st the current state and appends it to the history.
func (s *Server) commitLocked(st State, source string) {
	s.state = st
	s.history = append(s.history, stateChange{at: s.opts.Now().UTC(), state: copyState(st), source: source})
}

// stateAtLocked is the state in force at t: the last change made at or before
// t, or the initial state.
func (s *Server) stateAtLocked(t time.Time) State {
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].at.After(t) })
	if i == 0 {
		return s.initial
	}
	return s.history[i-1].state
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// setThrottleClock replaces the throttle's wall clock (tests).
func (s *Server) setThrottleClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleNow = now
}

// SetCAThrottle turns the Conditional Access throttle on or off. It is on by
// default: like Graph, the sandbox answers a request to
// /identity/conditionalAccess/… with 429 TooManyRequests and no Retry-After
// header when it comes less than one second (wall clock) after the previous
// admitted one.
func (s *Server) SetCAThrottle(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caThrottle = on
	s.caLast = time.Time{}
}

// Fail adds a failure rule; rules are tried in order.
func (s *Server) Fail(r FailRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &r)
}

// ClearFailures removes all failure rules, the token endpoint's included.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
	s.tokenFails = nil
}

// FailuresLeft is how many failure rules, the token endpoint's included,
// are still armed (a rule with Times is disarmed once used up).
func (s *Server) FailuresLeft() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rules) + len(s.tokenFails)
}

// FailTokens makes the token endpoint fail: r.Status (default 503) with
// Entra's temporarily_unavailable error, or r.Hang; for r.Times requests
// (<= 0: until ClearFailures). Method and PathPrefix are ignored.
func (s *Server) FailTokens(r FailRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFails = append(s.tokenFails, &r)
}

// Hold makes the next request matching method and path prefix wait until
// release is called (or the server closes) before it is served. held is
// closed when such a request has arrived. An empty method matches any; the
// prefix is matched against the path after /v1.0.
func (s *Server) Hold(method, pathPrefix string) (held <-chan struct{}, release func()) {
	h := s.HoldRequest(HoldSpec{Method: method, PathPrefix: pathPrefix})
	return h.Arrived(), h.Release
}

// HoldRequest holds the request spec chooses until Release (or Close).
func (s *Server) HoldRequest(spec HoldSpec) Held {
	h := &hold{method: spec.Method, prefix: spec.PathPrefix, skip: spec.Skip, landed: spec.Landed, late: spec.Late,
		arrived: make(chan struct{}), gone: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	return Held{h}
}

// History returns the tenant's changes, oldest first: one entry per SetState
// and per Graph write that changed a setting (every Conditional Access
// PATCH counts: it moves the policy's modifiedDateTime).
func (s *Server) History() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Change, len(s.history))
	for i, c := range s.history {
		out[i] = Change{At: c.at, Source: c.source, State: copyState(c.state)}
	}
	return out
}

// Initial returns the state the sandbox started with.
func (s *Server) Initial() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyState(s.initial)
}

// Requests returns every Graph request received so far, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.requests))
	for i, r := range s.requests {
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

func copyState(st State) State {
	out := st
	out.Policies = make([]Policy, len(st.Policies))
	for i, p := range st.Policies {
		out.Policies[i] = copyPolicy(p)
	}
	return out
}

func copyPolicy(p Policy) Policy {
	p.ClientAppTypes = cloneStrings(p.ClientAppTypes)
	p.IncludeUsers = cloneStrings(p.IncludeUsers)
	p.ExcludeUsers = cloneStrings(p.ExcludeUsers)
	p.PolicyMore = p.PolicyMore.clone()
	return p
}

func cloneStrings(in []string) []string {
	out := make([]string, len(in))
	copy(out, in)
	return out
}

func validatePolicy(p Policy) error {
	if p.ID == "" {
		return errors.New("policy without id")
	}
	switch p.State {
	case "enabled", "disabled", "enabledForReportingButNotEnforced":
	default:
		return fmt.Errorf("policy %s: unknown state %q", p.ID, p.State)
	}
	return nil
}
