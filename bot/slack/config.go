package slack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/c2bot/c2bot/bot"
)

// DefaultAPIURL is the Slack Web API base used when Config.APIURL is empty.
const DefaultAPIURL = "https://slack.com/api/"

// Config is what the Slack adapter needs. BotToken is always required; HTTP
// mode needs SigningSecret, Socket Mode needs AppToken (both may be set).
// Secrets never appear in the errors Validate returns.
type Config struct {
	// BotToken is the bot user OAuth token (xoxb-…), C2_SLACK_BOT_TOKEN.
	BotToken string
	// SigningSecret verifies HTTP requests from Slack, C2_SLACK_SIGNING_SECRET.
	SigningSecret string
	// AppToken is the app-level token (xapp-…) that turns on Socket Mode,
	// C2_SLACK_APP_TOKEN.
	AppToken string
	// APIURL is the Web API base, C2_SLACK_API_URL; DefaultAPIURL when empty.
	// It must be https, except on a loopback host (tests, local fakes).
	APIURL string
	// Logger receives the adapter's logs; slog.Default() when nil.
	// OnRefused, when set, is called with the reason of every inbound
	// request the adapter refuses (metrics): bad_signature, stale,
	// too_large, bad_request, busy, wrong_workspace, unauthorised,
	// forbidden, wrong_tenant, cross_site, rebinding.
	OnRefused func(reason string)
	Logger    *slog.Logger
	// Now is the clock used for the request-signature window; time.Now when nil.
	Now func() time.Time
	// HTTPClient sends Web API calls; a client with a 30 s timeout when nil.
	HTTPClient *http.Client
	// TeamIDs are further workspaces (T…) or Enterprise Grid organisations
	// (E…) whose requests are served, C2_SLACK_TEAM_IDS; the bot token's own
	// workspace (auth.test, see Adapter.Check) always is. Requests from any
	// other workspace are refused.
	TeamIDs []string
}

// defaultHTTPTimeout bounds one Web API call when Config.HTTPClient is nil.
const defaultHTTPTimeout = 30 * time.Second

// Validate checks cfg and fills in defaults. Its errors name the setting
// (C2_SLACK_…) that is wrong, never its value.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.BotToken == "":
		errs = append(errs, errors.New("C2_SLACK_BOT_TOKEN is required"))
	case !strings.HasPrefix(c.BotToken, "xoxb-") && !strings.HasPrefix(c.BotToken, "xoxe.xoxb-"):
		errs = append(errs, errors.New("C2_SLACK_BOT_TOKEN must be a bot token (it starts with xoxb-)"))
	}
	if c.AppToken != "" && !strings.HasPrefix(c.AppToken, "xapp-") {
		errs = append(errs, errors.New("C2_SLACK_APP_TOKEN must be an app-level token (it starts with xapp-)"))
	}
	if c.SigningSecret == "" && c.AppToken == "" {
		errs = append(errs, errors.New("set C2_SLACK_SIGNING_SECRET (HTTP mode) or C2_SLACK_APP_TOKEN (Socket Mode)"))
	}
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	if err := checkAPIURL(c.APIURL); err != nil {
		errs = append(errs, err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("slack config: %w", err)
	}
	return nil
}

// checkAPIURL refuses a base URL that would send the token in clear text to
// anything but this machine.
func checkAPIURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("C2_SLACK_API_URL must be an absolute URL like https://slack.com/api/")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("C2_SLACK_API_URL must use https (http is allowed only for a loopback host)")
	}
	return errors.New("C2_SLACK_API_URL must be an http(s) URL")
}

func isLoopback(host string) bool { return bot.IsLoopbackHost(host) }

// bearerTransport moves the "token" field slack-go puts in form-encoded
// request bodies into an Authorization header, as Slack recommends, so the
// token never travels in a body that proxies or debug dumps might record.
type bearerTransport struct {
	base http.RoundTripper
}

func (t bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Body == nil || req.Header.Get("Authorization") != "" ||
		!strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return base.RoundTrip(req)
	}
	raw, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil || form.Get("token") == "" {
		return base.RoundTrip(withBody(req, raw))
	}
	token := form.Get("token")
	form.Del("token")
	out := withBody(req, []byte(form.Encode()))
	out.Header.Set("Authorization", "Bearer "+token)
	return base.RoundTrip(out)
}

// withBody returns a shallow copy of req (RoundTrippers must not modify
// their request) that sends body.
func withBody(req *http.Request, body []byte) *http.Request {
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(strings.NewReader(string(body)))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(body))), nil
	}
	return out
}

// apiHTTPClient returns a copy of c whose transport sends the token as a
// bearer header.
func apiHTTPClient(c *http.Client) *http.Client {
	cp := *c
	cp.Transport = bearerTransport{base: c.Transport}
	return &cp
}
