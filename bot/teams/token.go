package teams

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/c2bot/c2bot/bot"
)

// botFrameworkScope is the scope of tokens for the Bot Connector.
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
// client-credentials grant; MSAL caches them until shortly before expiry.
type msalTokens struct {
	client confidential.Client
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

func newMSALTokens(cfg Config) (*msalTokens, error) {
	base, err := url.Parse(strings.TrimRight(cfg.AuthorityURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("teams: bad authority url %q", cfg.AuthorityURL)
	}
	if base.Scheme != "https" {
		return nil, fmt.Errorf("teams: authority url %q must be https", cfg.AuthorityURL)
	}
	authority := base.String() + "/" + url.PathEscape(cfg.AppTenantID)
	cred, err := confidential.NewCredFromSecret(cfg.AppPassword)
	if err != nil {
		return nil, errors.New("teams: app password not usable as a client secret")
	}
	opts := []confidential.Option{confidential.WithHTTPClient(cfg.HTTPClient)}
	if !publicAuthorityHosts[strings.ToLower(base.Hostname())] {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	c, err := confidential.New(authority, cfg.AppID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("teams: token client: %w", err)
	}
	return &msalTokens{client: c, secret: cfg.AppPassword}, nil
}

// Token returns a Bot Framework access token, from MSAL's cache when it is
// still valid. An unreachable token endpoint is an error.
func (m *msalTokens) Token(ctx context.Context) (string, error) {
	res, err := m.client.AcquireTokenByCredential(ctx, []string{botFrameworkScope})
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
