package teams

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"

	"github.com/c2bot/c2bot/bot"
)

// botFrameworkScope is the scope of tokens for the Bot Connector in the
// public cloud; Config.TokenScope names another cloud's.
const botFrameworkScope = "https://api.botframework.com/.default"

// maxTokenError bounds the sign-in error text kept in an error.
const maxTokenError = 400

// bounded joins s's whitespace and cuts it to n bytes.
func bounded(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// tokenSource gives bearer tokens for the Bot Connector.
type tokenSource interface {
	Token(ctx context.Context) (string, error)
}

// msalTokens gets app tokens for the bot from its own tenant with the
// client-credentials grant (secret, certificate or federated assertion);
// MSAL caches them until shortly before expiry.
type msalTokens struct {
	client confidential.Client
	scope  string
	// secret is the app password, redacted from errors in every form.
	secret string
}

// publicAuthorityHosts are the Entra ID clouds MSAL knows; for any other
// host (the sandbox, a test server) instance discovery is turned off.
var publicAuthorityHosts = map[string]bool{
	"login.microsoftonline.com": true,
	"login.microsoftonline.us":  true,
	"login.chinacloudapi.cn":    true,
	"login.microsoftonline.de":  true,
	"login.windows.net":         true,
}

// checkCredential wants exactly one way for the bot to get tokens.
func (cfg Config) checkCredential() error {
	n := 0
	for _, v := range []string{cfg.AppPassword, cfg.AppCertFile, cfg.FederatedTokenFile, cfg.ManagedIdentity} {
		if v != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("teams: app id set but no credential: set C2_TEAMS_APP_PASSWORD, C2_TEAMS_APP_CERT, C2_FEDERATED_TOKEN_FILE or C2_MANAGED_IDENTITY")
	case n > 1:
		return errors.New("teams: give the bot one credential: an app password, a certificate, a federated token file or a managed identity")
	}
	return nil
}

func (cfg Config) scope() string {
	if cfg.TokenScope != "" {
		return cfg.TokenScope
	}
	return botFrameworkScope
}

func newMSALTokens(cfg Config) (tokenSource, error) {
	if cfg.AppPassword == "" && cfg.AppCertFile == "" && cfg.FederatedTokenFile == "" && cfg.ManagedIdentity != "" {
		return newManagedTokens(cfg)
	}
	base, err := url.Parse(strings.TrimRight(cfg.AuthorityURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("teams: bad authority url %q", cfg.AuthorityURL)
	}
	if base.Scheme != "https" {
		return nil, fmt.Errorf("teams: authority url %q must be https", cfg.AuthorityURL)
	}
	authority := base.String() + "/" + url.PathEscape(cfg.AppTenantID)
	var cred confidential.Credential
	switch {
	case cfg.AppPassword != "":
		cred, err = confidential.NewCredFromSecret(cfg.AppPassword)
		if err != nil {
			return nil, errors.New("teams: app password not usable as a client secret")
		}
	case cfg.AppCertFile != "":
		pemData, rerr := os.ReadFile(cfg.AppCertFile)
		if rerr != nil {
			return nil, fmt.Errorf("teams: read app certificate: %w", rerr)
		}
		certs, key, perr := confidential.CertFromPEM(pemData, "")
		if perr != nil {
			return nil, fmt.Errorf("teams: parse app certificate %s: %w", cfg.AppCertFile, perr)
		}
		if cred, err = confidential.NewCredFromCert(certs, key); err != nil {
			return nil, fmt.Errorf("teams: app certificate: %w", err)
		}
	default:
		cred = confidential.NewCredFromAssertionCallback(federatedAssertion(cfg.FederatedTokenFile))
	}
	opts := []confidential.Option{confidential.WithHTTPClient(cfg.HTTPClient)}
	if !publicAuthorityHosts[strings.ToLower(base.Hostname())] {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	c, err := confidential.New(authority, cfg.AppID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("teams: token client: %w", err)
	}
	return &msalTokens{client: c, scope: cfg.scope(), secret: cfg.AppPassword}, nil
}

// federatedAssertion reads the workload identity token file on every token
// request: the platform rotates it.
func federatedAssertion(path string) func(context.Context, confidential.AssertionRequestOptions) (string, error) {
	return func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read federated token file: %w", err)
		}
		if tok := strings.TrimSpace(string(raw)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("federated token file %s is empty", path)
	}
}

// Token returns a Bot Framework access token, from MSAL's cache when it is
// still valid. An unreachable token endpoint is an error.
func (m *msalTokens) Token(ctx context.Context) (string, error) {
	res, err := m.client.AcquireTokenByCredential(ctx, []string{m.scope})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			return "", cerr
		}
		// MSAL quotes the authority's answer, which may echo the request
		// body (client_secret=…): nothing of it leaves unredacted.
		return "", errors.New(bounded(bot.Redact(err.Error(), m.secret), maxTokenError))
	}
	if res.AccessToken == "" {
		return "", errors.New("token endpoint returned no access token")
	}
	return res.AccessToken, nil
}

// managedTokens gets Bot Connector tokens from the Azure host's managed
// identity endpoint (a bot registered as UserAssignedMSI).
type managedTokens struct {
	client   managedidentity.Client
	resource string
}

func newManagedTokens(cfg Config) (*managedTokens, error) {
	id := managedidentity.ID(managedidentity.UserAssignedClientID(cfg.ManagedIdentity))
	if strings.EqualFold(cfg.ManagedIdentity, "system") {
		id = managedidentity.SystemAssigned()
	}
	c, err := managedidentity.New(id, managedidentity.WithHTTPClient(cfg.HTTPClient))
	if err != nil {
		return nil, fmt.Errorf("teams: managed identity: %w", err)
	}
	return &managedTokens{client: c, resource: strings.TrimSuffix(cfg.scope(), "/.default")}, nil
}

// Token returns a Bot Framework access token from the managed identity.
func (m *managedTokens) Token(ctx context.Context) (string, error) {
	res, err := m.client.AcquireToken(ctx, m.resource)
	if err != nil {
		return "", err
	}
	if res.AccessToken == "" {
		return "", errors.New("managed identity returned no access token")
	}
	return res.AccessToken, nil
}
