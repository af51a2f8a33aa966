package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Inbound token rules (Bot Framework "Connector to bot" authentication).
const (
	// botFrameworkIssuer is the only issuer accepted on inbound tokens.
	botFrameworkIssuer = "https://api.botframework.com"
	// tokenLeeway is the clock skew allowed on exp and nbf (the Bot
	// Framework protocol allows five minutes).
	tokenLeeway = 5 * time.Minute
	// keysMaxAge is how long fetched metadata and keys are used before they
	// are fetched again on the next request (revoked keys disappear).
	keysMaxAge = 24 * time.Hour
	// keysRetryAfter is how long a failed metadata or key fetch is not retried.
	keysRetryAfter = 10 * time.Second
	// unknownKIDRefresh is the minimum interval between key refreshes
	// caused by tokens with an unknown key id.
	unknownKIDRefresh = 5 * time.Minute
	// metadataTimeout bounds the metadata and key fetches.
	metadataTimeout = 10 * time.Second
)

var (
	// errUnauthorized means the request's token was refused (401).
	errUnauthorized = errors.New("unauthorized")
	// errKeysUnavailable means the signing keys could not be fetched (503).
	errKeysUnavailable = errors.New("signing keys unavailable")
	// errForbidden means a valid token does not cover the activity: its
	// signing key is not endorsed for the activity's channel (403).
	errForbidden = errors.New("forbidden")
)

// verifier checks inbound Bot Framework JWTs. The OpenID metadata and the
// key set are fetched once and cached; an unknown key id triggers one
// rate-limited refresh of the key set (keyfunc/jwkset), never a fetch per
// request.
type verifier struct {
	appID     string
	openIDURL string
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger
	// unknownKID limits key refreshes caused by unknown key ids; it
	// survives reloads.
	unknownKID *rate.Limiter
	// issuer is the accepted token issuer; empty means botFrameworkIssuer
	// (the public cloud; national clouds have their own).
	issuer string

	// endorsed maps each key id of the last fetched key set to the
	// channel ids its "endorsements" list (jwkset drops that member, so the
	// key set's bytes are read a second time as they arrive).
	endorsed atomic.Pointer[map[string][]string]

	mu       sync.Mutex
	kf       keyfunc.Keyfunc
	loadedAt time.Time
	failedAt time.Time
	failErr  error
}

func newVerifier(appID, openIDURL string, client *http.Client, now func() time.Time, log *slog.Logger) *verifier {
	return &verifier{
		appID: appID, openIDURL: openIDURL, client: client, now: now, log: log,
		unknownKID: rate.NewLimiter(rate.Every(unknownKIDRefresh), 1),
	}
}

func (v *verifier) expectedIssuer() string {
	if v.issuer != "" {
		return v.issuer
	}
	return botFrameworkIssuer
}

// Verify checks the Authorization header of an activity whose serviceUrl
// is serviceURL and whose channelId is channelID. It returns an error
// wrapping errUnauthorized when the token is missing or refused,
// errForbidden when the key that signed it is not endorsed for channelID,
// errKeysUnavailable when the keys cannot be fetched.
//
// Endorsements: "The endorsements property within each key contains one or
// more endorsement strings which you can use to verify that the channel ID
// specified in the channelId property within the Activity object of the
// incoming request is authentic" — and if it is missing the bot should
// answer 403 (learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).
func (v *verifier) Verify(ctx context.Context, authz, serviceURL, channelID string) error {
	scheme, raw, ok := strings.Cut(strings.TrimSpace(authz), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return fmt.Errorf("%w: no bearer token", errUnauthorized)
	}
	kf, err := v.keys(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(strings.TrimSpace(raw), claims, kf.KeyfuncCtx(ctx),
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(v.expectedIssuer()),
		jwt.WithAudience(v.appID),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(v.now),
	)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnauthorized, err)
	}
	claimed, _ := claims["serviceurl"].(string)
	if claimed == "" || !strings.EqualFold(claimed, serviceURL) {
		return fmt.Errorf("%w: serviceurl claim does not match the activity", errUnauthorized)
	}
	kid, _ := tok.Header["kid"].(string)
	if !v.endorses(kid, channelID) {
		return fmt.Errorf("%w: signing key %q is not endorsed for channel %q", errForbidden, kid, channelID)
	}
	return nil
}

// endorses reports whether the key kid of the last fetched key set lists
// channelID among its endorsements. An empty channel id is never endorsed.
func (v *verifier) endorses(kid, channelID string) bool {
	m := v.endorsed.Load()
	if m == nil || channelID == "" {
		return false
	}
	for _, e := range (*m)[kid] {
		if e == channelID {
			return true
		}
	}
	return false
}

// maxKeySetBytes bounds a fetched key set.
const maxKeySetBytes = 1 << 20

// endorsementTap is the transport of the key-set fetches: it passes the
// answer on unchanged and records the endorsements of each key from the
// same bytes, so keys and endorsements always come from one fetch.
type endorsementTap struct {
	base   http.RoundTripper
	jwks   string
	record func(map[string][]string)
}

func (t endorsementTap) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.URL.String() != t.jwks || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	var set struct {
		Keys []struct {
			KID          string   `json:"kid"`
			Endorsements []string `json:"endorsements"`
		} `json:"keys"`
	}
	if json.Unmarshal(body, &set) == nil {
		m := make(map[string][]string, len(set.Keys))
		for _, k := range set.Keys {
			if k.KID != "" {
				m[k.KID] = k.Endorsements
			}
		}
		t.record(m)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// keys returns the cached key function, loading it when there is none or it
// is older than keysMaxAge. After a failure it waits keysRetryAfter before
// trying again, so a broken metadata endpoint is not hammered.
func (v *verifier) keys(ctx context.Context) (keyfunc.Keyfunc, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	if v.kf != nil && now.Sub(v.loadedAt) < keysMaxAge {
		return v.kf, nil
	}
	if v.failErr != nil && now.Sub(v.failedAt) < keysRetryAfter {
		if v.kf != nil {
			return v.kf, nil
		}
		return nil, v.failErr
	}
	kf, err := v.load(ctx)
	if err != nil {
		v.failErr, v.failedAt = err, now
		v.log.WarnContext(ctx, "cannot fetch Bot Framework signing keys", "err", err)
		if v.kf != nil {
			return v.kf, nil // keep the old keys until the fetch works again
		}
		return nil, err
	}
	v.kf, v.loadedAt, v.failErr = kf, now, nil
	return kf, nil
}

// openIDMetadata is the part of the OpenID configuration used here.
type openIDMetadata struct {
	JWKSURI string `json:"jwks_uri"`
}

// load fetches the OpenID metadata, then the key set at its jwks_uri.
func (v *verifier) load(ctx context.Context) (keyfunc.Keyfunc, error) {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.openIDURL, nil)
	if err != nil {
		return nil, fmt.Errorf("openid metadata request: %w", err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch openid metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch openid metadata: status %d", resp.StatusCode)
	}
	var md openIDMetadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil {
		return nil, fmt.Errorf("decode openid metadata: %w", err)
	}
	ju, err := url.Parse(md.JWKSURI)
	if err != nil || ju.Host == "" || (ju.Scheme != "https" && ju.Scheme != "http") {
		return nil, fmt.Errorf("openid metadata: bad jwks_uri %q", md.JWKSURI)
	}
	if strings.HasPrefix(v.openIDURL, "https:") && ju.Scheme != "https" {
		return nil, fmt.Errorf("openid metadata: jwks_uri %q is not https", md.JWKSURI)
	}
	base := v.client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	tapped := *v.client
	tapped.Transport = endorsementTap{base: base, jwks: ju.String(), record: func(m map[string][]string) { v.endorsed.Store(&m) }}
	store, err := jwkset.NewStorageFromHTTP(ju.String(), jwkset.HTTPClientStorageOptions{
		Client:      &tapped,
		Ctx:         ctx,
		HTTPTimeout: metadataTimeout,
		// No RefreshInterval: no background goroutine; keys are reloaded
		// after keysMaxAge and refreshed on an unknown key id.
	})
	if err != nil {
		return nil, fmt.Errorf("fetch signing keys: %w", err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{ju.String(): store},
		RefreshUnknownKID: v.unknownKID,
		// The limiter fails at once when its next token is further away
		// than this, so a flood of unknown key ids does not hold requests;
		// the same deadline bounds the refresh itself.
		RateLimitWaitMax: metadataTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return keyfunc.New(keyfunc.Options{Storage: client})
}
