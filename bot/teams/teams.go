// Package teams is c2bot's Microsoft Teams adapter. It receives Bot
// Framework activities on /api/messages (JWTs checked against the Bot
// Framework OpenID metadata, keys cached), turns typed commands and
// Adaptive Card clicks (Action.Submit and Action.Execute) into bot.Command
// values, renders bot.Message as Adaptive Cards, and posts or updates them
// through the Bot Connector REST API with tokens from the bot's own tenant
// (MSAL). It also builds the Teams app package (Package).
//
// Conversation references (serviceUrl, conversation, tenant, bot) travel in
// bot.Conversation.Ref, so the core can persist them and post proactively
// after a restart.
package teams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/c2bot/c2bot/bot"
)

// Defaults for Config.
const (
	// DefaultOpenIDURL is where the Bot Framework publishes the metadata of
	// the keys that sign inbound requests.
	DefaultOpenIDURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	// DefaultAuthorityURL is the Entra ID sign-in endpoint for outbound tokens.
	DefaultAuthorityURL = "https://login.microsoftonline.com"
)

// Timeouts and limits.
const (
	// invokeWait is how long an Action.Execute invoke waits for the handler's
	// first update of the clicked card; Teams gives up after about 15 s.
	invokeWait = 8 * time.Second
	// connectorTimeout bounds one Bot Connector call.
	connectorTimeout = 20 * time.Second
	// maxActivityBytes bounds an inbound activity.
	maxActivityBytes = 1 << 20
	// replyTimeout bounds a short reply sent from the HTTP handler itself.
	replyTimeout = 5 * time.Second
)

// Config configures the Teams adapter. Empty fields take the defaults.
type Config struct {
	// AppID is the bot's Microsoft App ID (C2_TEAMS_APP_ID). It is
	// required unless Unauthenticated is set.
	AppID string
	// Unauthenticated turns off the token check for the Microsoft 365
	// Agents Playground (C2_TEAMS_UNAUTHENTICATED). It is an explicit
	// opt-in, never implied by a missing AppID, and allowed only on a
	// loopback ListenAddr; even then only loopback clients that post JSON
	// with no browser Origin are served, and replies go only to a loopback
	// serviceUrl.
	Unauthenticated bool
	// Tenants are the Entra tenant ids whose Teams users may use the bot
	// (C2_TEAMS_TENANTS); an activity from any other tenant is refused.
	// Default: AppTenantID, the tenant the single-tenant bot lives in.
	Tenants []string
	// AppPassword is the bot's client secret (C2_TEAMS_APP_PASSWORD).
	AppPassword string
	// AppCertFile is a PEM file with the bot app's certificate and private
	// key (C2_TEAMS_APP_CERT), instead of a password.
	AppCertFile string
	// FederatedTokenFile is a workload identity token file Entra trusts for
	// the bot app (C2_FEDERATED_TOKEN_FILE), read afresh on every token request.
	FederatedTokenFile string
	// ManagedIdentity is "system" or the client id of a user-assigned
	// managed identity (C2_MANAGED_IDENTITY): a bot registered with the
	// UserAssignedMSI app type gets its tokens from the Azure host.
	ManagedIdentity string
	// TokenScope is the scope of outbound Bot Connector tokens and Issuer
	// the issuer of inbound ones; defaults are the public cloud's
	// (https://api.botframework.com/.default, https://api.botframework.com).
	TokenScope string
	Issuer     string
	// OnTokenFailure, when set, is called for every failed outbound token
	// request (metrics).
	OnTokenFailure func()
	// AppTenantID is the tenant the single-tenant bot is registered in
	// (C2_TEAMS_APP_TENANT_ID); outbound tokens come from it.
	AppTenantID string
	// AuthorityURL is the sign-in endpoint (C2_AUTHORITY_URL), default
	// DefaultAuthorityURL.
	AuthorityURL string
	// OpenIDURL is the Bot Framework OpenID metadata URL
	// (C2_BOTFRAMEWORK_OPENID_URL), default DefaultOpenIDURL.
	OpenIDURL string
	// ListenAddr is the address /api/messages is served on (C2_LISTEN);
	// it decides whether unauthenticated mode is allowed.
	ListenAddr string
	// HTTPClient is used for the OpenID metadata, the keys, the token
	// endpoint and the Bot Connector. Default: a client with a timeout.
	HTTPClient *http.Client
	// Logger receives the adapter's logs. Default: slog.Default().
	// OnRefused, when set, is called with the reason of every inbound
	// request the adapter refuses (metrics): bad_signature, stale,
	// too_large, bad_request, busy, wrong_workspace, unauthorised,
	// forbidden, wrong_tenant, cross_site, rebinding.
	OnRefused func(reason string)
	Logger    *slog.Logger
	// Now is the clock used to check token lifetimes. Default: time.Now.
	Now func() time.Time
}

// Submitter accepts commands for asynchronous handling; *bot.Dispatcher
// implements it.
type Submitter interface {
	// Submit queues cmd and reports whether it was accepted.
	Submit(cmd bot.Command) bool
}

// Adapter is the Teams adapter: an http.Handler for /api/messages (see
// Handler) and the bot.Sender for the Teams platform.
type Adapter struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	auth   *verifier
	tokens tokenSource
	// invokeWait is how long a click waits for its card (the constant
	// invokeWait; tests shorten it).
	invokeWait time.Duration

	// tenants are the allowed Entra tenant ids, lower case.
	tenants map[string]bool

	mu       sync.Mutex
	sub      Submitter
	inflight []*pendingInvoke
}

// New checks cfg, fills its defaults and returns an adapter. It does no
// network I/O: the OpenID metadata and keys are fetched on the first
// request. It returns an error when the configuration is incomplete (an app
// id without password or tenant, a non-https authority) or when
// unauthenticated mode is asked for on a non-loopback address.
func New(cfg Config) (*Adapter, error) {
	if cfg.OpenIDURL == "" {
		cfg.OpenIDURL = DefaultOpenIDURL
	}
	if cfg.AuthorityURL == "" {
		cfg.AuthorityURL = DefaultAuthorityURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	switch {
	case cfg.AppID == "" && !cfg.Unauthenticated:
		return nil, errors.New("teams: no app id (C2_TEAMS_APP_ID); for the Agents Playground on a loopback address set C2_TEAMS_UNAUTHENTICATED=true instead")
	case cfg.AppID != "" && cfg.Unauthenticated:
		return nil, errors.New("teams: C2_TEAMS_UNAUTHENTICATED=true and C2_TEAMS_APP_ID are both set; unauthenticated mode is for the Agents Playground only")
	}
	if err := CheckListen(cfg.ListenAddr, cfg.Unauthenticated); err != nil {
		return nil, err
	}
	tenants := map[string]bool{}
	for _, t := range cfg.Tenants {
		if t = strings.TrimSpace(t); t != "" {
			tenants[strings.ToLower(t)] = true
		}
	}
	if len(tenants) == 0 && cfg.AppTenantID != "" {
		tenants[strings.ToLower(cfg.AppTenantID)] = true
	}
	if len(tenants) == 0 {
		return nil, errors.New("teams: no tenant may use the bot; set C2_TEAMS_TENANTS to the Entra tenant ids whose Teams users may use it (default: C2_TEAMS_APP_TENANT_ID)")
	}
	a := &Adapter{cfg: cfg, log: cfg.Logger.With("platform", bot.Teams), client: cfg.HTTPClient, invokeWait: invokeWait, tenants: tenants}
	if cfg.Unauthenticated {
		a.log.Warn("Teams runs unauthenticated (C2_TEAMS_UNAUTHENTICATED); loopback clients only, replies to loopback only", "listen", cfg.ListenAddr)
		return a, nil
	}
	if err := cfg.checkCredential(); err != nil {
		return nil, err
	}
	if cfg.AppTenantID == "" {
		return nil, errors.New("teams: app id set but no app tenant id (C2_TEAMS_APP_TENANT_ID); single-tenant bots get tokens from their own tenant")
	}
	u, err := url.Parse(cfg.OpenIDURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("teams: bad OpenID metadata url %q", cfg.OpenIDURL)
	}
	ts, err := newMSALTokens(cfg)
	if err != nil {
		return nil, err
	}
	a.tokens = ts
	a.auth = newVerifier(cfg.AppID, cfg.OpenIDURL, cfg.HTTPClient, cfg.Now, a.log)
	a.auth.issuer = cfg.Issuer
	return a, nil
}

// CheckListen returns an error when unauthenticated mode is asked for and
// addr is not a loopback address: without a token nobody checks who sends
// activities, so only local clients (the Agents Playground) may.
func CheckListen(addr string, unauthenticated bool) error {
	if !unauthenticated {
		return nil
	}
	if !isLoopbackAddr(addr) {
		return fmt.Errorf("teams: C2_TEAMS_UNAUTHENTICATED=true but listen address %q is not loopback; unauthenticated mode is allowed on 127.0.0.1, ::1 or localhost only", addr)
	}
	return nil
}

// isLoopbackAddr reports whether a host:port (or bare host) names only
// loopback interfaces. An empty host (":3978") listens everywhere.
func isLoopbackAddr(addr string) bool {
	return bot.IsLoopbackHost(addr)
}

// Attach sets where parsed commands go (normally the core's
// *bot.Dispatcher). Until it is called /api/messages answers 503.
func (a *Adapter) Attach(s Submitter) {
	a.mu.Lock()
	a.sub = s
	a.mu.Unlock()
}

func (a *Adapter) submitter() Submitter {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sub
}

// Platform returns bot.Teams.
func (a *Adapter) Platform() string { return bot.Teams }

// Authenticated reports whether inbound requests are checked (an app id is
// configured).
func (a *Adapter) Authenticated() bool { return a.auth != nil }

// token returns the Authorization header value for the Bot Connector, or ""
// in unauthenticated mode.
func (a *Adapter) token(ctx context.Context) (string, error) {
	if a.tokens == nil {
		return "", nil
	}
	tok, err := a.tokens.Token(ctx)
	if err != nil {
		if a.cfg.OnTokenFailure != nil && ctx.Err() == nil {
			a.cfg.OnTokenFailure()
		}
		return "", fmt.Errorf("get bot token: %w", err)
	}
	return "Bearer " + tok, nil
}

var _ bot.Sender = (*Adapter)(nil)
