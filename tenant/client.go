// Package tenant is the Microsoft 365 side of c2bot: the Graph client
// (msgraph-sdk-go request builders with MSAL client-credential tokens), the
// checks that find what blocks a tool's legacy sign-ins, and the change plan
// whose items snapshot, apply, verify and restore themselves. The sandbox
// tenant lives in tenant/sandbox.
package tenant

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	kiotaauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	formser "github.com/microsoft/kiota-serialization-form-go"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	textser "github.com/microsoft/kiota-serialization-text-go"
)

// ErrNotApplied is returned by Verify when the read-back value is not the one set.
var ErrNotApplied = errors.New("change not visible on read-back")

// Config says which tenant to reach and how to sign in.
type Config struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// CertFile is a PEM file holding the app's certificate and private key;
	// used when ClientSecret is empty.
	CertFile string
	// FederatedTokenFile is a token file that Entra trusts through a
	// federated credential of the app (workload identity federation: AKS,
	// GitHub); it is read afresh on every token request.
	FederatedTokenFile string
	// ManagedIdentity is "system" or a user-assigned identity's client id:
	// tokens come from the Azure host's managed identity endpoint, and
	// ClientID and the other credentials are not used.
	ManagedIdentity string
	// GraphURL and AuthorityURL default to https://graph.microsoft.com and
	// https://login.microsoftonline.com; both must be https.
	GraphURL     string
	AuthorityURL string
	// HTTPClient is used for Graph and token requests (the sandbox passes one
	// that trusts its certificate). Nil means a client with sane timeouts.
	// For Graph, its Transport carries the middleware and its Timeout bounds
	// each attempt (waits between retries do not count).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// MaxRetries bounds retries of 429/503 answers; zero means 4.
	MaxRetries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics receives Graph call, throttling and token metrics; nil means none.
	Metrics Metrics
}

// Defaults filled by New.
const (
	DefaultGraphURL     = "https://graph.microsoft.com"
	DefaultAuthorityURL = "https://login.microsoftonline.com"
	// defaultHTTPTimeout bounds one HTTP attempt when Config.HTTPClient is nil.
	defaultHTTPTimeout = 60 * time.Second
)

// tenantIDPattern accepts a GUID or a domain name: nothing that could change
// the authority URL's path.
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// Client reads and changes one Microsoft 365 tenant through Graph. It is
// safe for concurrent use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	adapter *khttp.NetHttpRequestAdapter
	retry   *retryHandler
	cred    *msalCredential
	metrics Metrics
	// graphBase is cfg.GraphURL + "/v1.0", parsed; paging links must stay on
	// its scheme and host.
	graphBase *url.URL
}

// CheckAndSetDefaults validates cfg and fills its defaults: TenantID and
// ClientID are required (ClientID not with a managed identity), and exactly one
// of ClientSecret, CertFile, FederatedTokenFile and ManagedIdentity; GraphURL and
// AuthorityURL must be https URLs without a query.
func (cfg *Config) CheckAndSetDefaults() error {
	if cfg.TenantID == "" || !tenantIDPattern.MatchString(cfg.TenantID) {
		return errors.New("tenant id: need a GUID or a domain name")
	}
	if cfg.ClientID == "" && cfg.ManagedIdentity == "" {
		return errors.New("client id is required")
	}
	n := 0
	for _, v := range []string{cfg.ClientSecret, cfg.CertFile, cfg.FederatedTokenFile, cfg.ManagedIdentity} {
		if v != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("need a client secret, a certificate file, a federated token file or a managed identity")
	case n > 1:
		return errors.New("give one credential: a client secret, a certificate file, a federated token file or a managed identity")
	}
	var err error
	if cfg.GraphURL, err = httpsBase("graph url", cfg.GraphURL, DefaultGraphURL); err != nil {
		return err
	}
	if cfg.AuthorityURL, err = httpsBase("authority url", cfg.AuthorityURL, DefaultAuthorityURL); err != nil {
		return err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = defaultMaxRetries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	return nil
}

// httpsBase checks a base URL and returns it without a trailing slash.
func httpsBase(name, v, def string) (string, error) {
	if v == "" {
		v = def
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("%s %q: must be https", name, v)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%s %q: need https://host[/path] only", name, v)
	}
	return strings.TrimRight(v, "/"), nil
}

// New validates cfg, fills defaults and builds the client. It does no I/O.
func New(cfg Config) (*Client, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, fmt.Errorf("tenant config: %w", err)
	}
	cred, err := newCredential(cfg)
	if err != nil {
		return nil, err
	}
	graphBase, err := url.Parse(cfg.GraphURL + "/v1.0")
	if err != nil {
		return nil, fmt.Errorf("graph url: %w", err)
	}
	// The token goes only to the Graph host: with any other host (a national
	// cloud, the sandbox) kiota would otherwise send requests without one.
	// Kiota compares host names without the port.
	auth, err := kiotaauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(
		cred, []string{cfg.GraphURL + "/.default"}, []string{graphBase.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph auth provider: %w", err)
	}
	retry := newRetryHandler(cfg.MaxRetries, cfg.HTTPClient.Timeout, cfg.Now, cfg.Logger)
	retry.metrics = cfg.Metrics
	adapter, err := khttp.NewNetHttpRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, parseNodeFactories(), serializationWriterFactories(), newGraphHTTPClient(cfg.HTTPClient, retry))
	if err != nil {
		return nil, fmt.Errorf("graph request adapter: %w", err)
	}
	adapter.SetBaseUrl(graphBase.String())
	return &Client{
		cfg:       cfg,
		log:       cfg.Logger,
		now:       cfg.Now,
		adapter:   adapter,
		retry:     retry,
		cred:      cred,
		metrics:   cfg.Metrics,
		graphBase: graphBase,
	}, nil
}

// parseNodeFactories and serializationWriterFactories are the content types
// the Graph models need (what the SDK's service client registers globally),
// kept per client instead of in kiota's process-wide registries.
func parseNodeFactories() *absser.ParseNodeFactoryRegistry {
	r := absser.NewParseNodeFactoryRegistry()
	for _, f := range []absser.ParseNodeFactory{
		jsonser.NewJsonParseNodeFactory(),
		textser.NewTextParseNodeFactory(),
		formser.NewFormParseNodeFactory(),
	} {
		ct, _ := f.GetValidContentType()
		r.ContentTypeAssociatedFactories[ct] = f
	}
	return r
}

func serializationWriterFactories() *absser.SerializationWriterFactoryRegistry {
	r := absser.NewSerializationWriterFactoryRegistry()
	for _, f := range []absser.SerializationWriterFactory{
		jsonser.NewJsonSerializationWriterFactory(),
		textser.NewTextSerializationWriterFactory(),
		formser.NewFormSerializationWriterFactory(),
	} {
		ct, _ := f.GetValidContentType()
		r.ContentTypeAssociatedFactories[ct] = f
	}
	return r
}

// UseMetrics makes the client report to m. Call it before the client is
// used (it is not synchronised with requests in flight); a nil m stops
// reporting.
func (c *Client) UseMetrics(m Metrics) {
	if m == nil {
		m = nopMetrics{}
	}
	c.metrics = m
	c.retry.metrics = m
	c.cred.metrics = m
}
