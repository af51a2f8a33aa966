package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"
)

// publicAuthorityHost is the only sign-in host for which MSAL's instance
// discovery (a call to login.microsoftonline.com) is left on.
const publicAuthorityHost = "login.microsoftonline.com"

// maxAuthMessage bounds the sign-in error text kept in an error.
const maxAuthMessage = 400

// msalCredential adapts an MSAL confidential client to azcore.TokenCredential,
// which the kiota authentication provider asks for tokens. MSAL caches the
// app token and refreshes it before it expires.
type msalCredential struct {
	client tokenClient
	// secrets are redacted from any error text.
	secrets []string
	// metrics counts failed token requests.
	metrics Metrics
}

// GetToken implements azcore.TokenCredential.
func (m *msalCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := m.client.token(ctx, opts.Scopes, opts.Claims)
	if err != nil {
		if m.metrics != nil {
			m.metrics.TokenFailure()
		}
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return azcore.AccessToken{}, fmt.Errorf("get token: %w", ctxErr)
		}
		return azcore.AccessToken{}, newSignInError(err.Error(), m.secrets...)
	}
	return tok, nil
}

// signInError is a failed token request. Its text is MSAL's, which quotes
// the authority's answer (and an authority may echo the request body, secret
// and assertion included): every credential is redacted from it when it is
// made, before anything can log it. It matches ErrAuthentication.
type signInError struct {
	// code is the first AADSTS code in the answer ("AADSTS7000215"), if any.
	code string
	// detail is the redacted, bounded text.
	detail string
}

// aadstsCode finds Entra's error code in an answer.
var aadstsCode = regexp.MustCompile(`AADSTS\d+`)

func newSignInError(text string, secrets ...string) *signInError {
	s := strings.Join(strings.Fields(Redact(text, secrets...)), " ")
	if len(s) > maxAuthMessage {
		s = s[:maxAuthMessage] + "…"
	}
	return &signInError{code: aadstsCode.FindString(s), detail: s}
}

func (e *signInError) Error() string { return ErrAuthentication.Error() + ": " + e.detail }

// Is makes errors.Is(err, ErrAuthentication) true.
func (e *signInError) Is(target error) bool { return target == ErrAuthentication }

// UserMessage is what a person in the channel reads: the sign-in failed,
// with Entra's code, never the authority's text.
func (e *signInError) UserMessage() string {
	msg := "c2bot cannot sign in to the tenant"
	if e.code != "" {
		msg += " (" + e.code + ")"
	}
	return msg + ": check the app's client secret or certificate, its id and the tenant id. The details are in c2bot's log."
}

// tokenClient is what msalCredential asks for tokens: an MSAL confidential
// client (secret, certificate, federated assertion) or an MSAL managed
// identity client.
type tokenClient interface {
	token(ctx context.Context, scopes []string, claims string) (azcore.AccessToken, error)
}

type confidentialTokens struct{ app confidential.Client }

func (c confidentialTokens) token(ctx context.Context, scopes []string, claims string) (azcore.AccessToken, error) {
	var o []confidential.AcquireByCredentialOption
	if claims != "" {
		o = append(o, confidential.WithClaims(claims))
	}
	res, err := c.app.AcquireTokenByCredential(ctx, scopes, o...)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: res.AccessToken, ExpiresOn: res.ExpiresOn}, nil
}

type managedTokens struct{ app managedidentity.Client }

func (m managedTokens) token(ctx context.Context, scopes []string, claims string) (azcore.AccessToken, error) {
	if len(scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("managed identity takes one resource, got %d scopes", len(scopes))
	}
	var o []managedidentity.AcquireTokenOption
	if claims != "" {
		o = append(o, managedidentity.WithClaims(claims))
	}
	res, err := m.app.AcquireToken(ctx, scopes[0], o...)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: res.AccessToken, ExpiresOn: res.ExpiresOn}, nil
}

// ManagedIdentitySystem is the ManagedIdentity value that selects the
// system-assigned identity; any other non-empty value is the client id of a
// user-assigned identity.
const ManagedIdentitySystem = "system"

// FederatedAssertion returns an MSAL assertion callback that reads a
// federated token file (Kubernetes workload identity, GitHub OIDC) afresh on
// every token request: the platform rotates the file, so a cached copy would
// expire. An empty or unreadable file is an error naming the file only.
func FederatedAssertion(path string) func(context.Context, confidential.AssertionRequestOptions) (string, error) {
	return func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read federated token file: %w", err)
		}
		tok := strings.TrimSpace(string(raw))
		if tok == "" {
			return "", fmt.Errorf("federated token file %s is empty", path)
		}
		return tok, nil
	}
}

// ManagedIdentityID turns a ManagedIdentity setting into MSAL's identity.
func ManagedIdentityID(v string) managedidentity.ID {
	if strings.EqualFold(v, ManagedIdentitySystem) {
		return managedidentity.SystemAssigned()
	}
	return managedidentity.UserAssignedClientID(v)
}

// newCredential builds the MSAL client for cfg (already validated and
// defaulted): a managed identity, a client secret, a federated token file,
// or else the certificate and key in CertFile.
func newCredential(cfg Config) (*msalCredential, error) {
	if cfg.ManagedIdentity != "" {
		app, err := managedidentity.New(ManagedIdentityID(cfg.ManagedIdentity), managedidentity.WithHTTPClient(cfg.HTTPClient))
		if err != nil {
			return nil, fmt.Errorf("managed identity: %w", err)
		}
		return &msalCredential{client: managedTokens{app: app}, metrics: cfg.Metrics}, nil
	}
	var (
		cred    confidential.Credential
		err     error
		secrets []string
	)
	switch {
	case cfg.ClientSecret != "":
		cred, err = confidential.NewCredFromSecret(cfg.ClientSecret)
		secrets = append(secrets, cfg.ClientSecret)
	case cfg.FederatedTokenFile != "":
		cred = confidential.NewCredFromAssertionCallback(FederatedAssertion(cfg.FederatedTokenFile))
	default:
		var pemData []byte
		pemData, err = os.ReadFile(cfg.CertFile)
		if err != nil {
			return nil, fmt.Errorf("read client certificate: %w", err)
		}
		certs, key, perr := confidential.CertFromPEM(pemData, "")
		if perr != nil {
			// CertFromPEM's message names the PEM block, not its contents.
			return nil, fmt.Errorf("parse client certificate %s: %w", cfg.CertFile, perr)
		}
		cred, err = confidential.NewCredFromCert(certs, key)
	}
	if err != nil {
		return nil, fmt.Errorf("client credential: %w", err)
	}
	authority := cfg.AuthorityURL + "/" + url.PathEscape(cfg.TenantID)
	opts := []confidential.Option{confidential.WithHTTPClient(cfg.HTTPClient)}
	if u, _ := url.Parse(cfg.AuthorityURL); u == nil || !strings.EqualFold(u.Host, publicAuthorityHost) {
		// Instance discovery asks login.microsoftonline.com about the
		// authority host; a national cloud, a private authority or the
		// sandbox answers its own OpenID configuration instead.
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	app, err := confidential.New(authority, cfg.ClientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("sign-in client: %w", err)
	}
	return &msalCredential{client: confidentialTokens{app: app}, secrets: secrets, metrics: cfg.Metrics}, nil
}
