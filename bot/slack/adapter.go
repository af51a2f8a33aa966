// Package slack is c2bot's Slack adapter. It receives slash commands, button
// clicks and app mentions (over HTTP with signed requests, or over Socket
// Mode), acknowledges them at once, hands them to the core as bot.Commands,
// and renders the core's bot.Messages as Block Kit through the Web API.
//
// It is the only package that imports github.com/slack-go/slack.
//
// Wiring order: New the adapter, register it as a bot.Sender (the handler
// needs it), build the handler and its bot.Dispatcher, then Attach the
// dispatcher. Requests that arrive before Attach are answered with "c2bot
// is starting" and not run.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// Submitter accepts commands for asynchronous handling; *bot.Dispatcher
// implements it. Submit must not block.
type Submitter interface {
	Submit(cmd bot.Command) bool
}

// Adapter is the Slack side of c2bot: a bot.Sender and bot.EphemeralSender
// for the Web API, an http.Handler for HTTP mode and a Socket Mode client.
type Adapter struct {
	cfg  Config
	log  *slog.Logger
	api  *slack.Client
	sub  atomic.Pointer[submitterBox]
	seen *recent
	// served are the workspaces requests may come from.
	served *workspaces
	botID  atomic.Pointer[string] // the bot's user id, learnt from auth.test
	// scopes are the bot token's scopes as auth.test's X-OAuth-Scopes
	// header gave them; nil when it gave none.
	scopes atomic.Pointer[[]string]
	sleep  func(ctx context.Context, d time.Duration) error
	notify sync.WaitGroup // background "busy" notices, waited for by Close
	slots  chan struct{}  // bounds concurrent background notices

	socketOptions []socketmode.Option // extra Socket Mode options (tests)
}

type submitterBox struct{ s Submitter }

// Retry and timeout policy for Web API calls.
const (
	// maxRateLimitRetries is how many times one call is retried after a 429.
	maxRateLimitRetries = 3
	// maxRetryAfter is the longest Retry-After the adapter waits for; a
	// longer one is returned as a transient error for the caller's retry.
	maxRetryAfter = 2 * time.Minute
	// noticeTimeout bounds a background "busy" notice.
	noticeTimeout = 10 * time.Second
	// maxNotices bounds concurrent background notices.
	maxNotices = 8
)

var (
	_ bot.Sender          = (*Adapter)(nil)
	_ bot.EphemeralSender = (*Adapter)(nil)
)

// New validates cfg and returns an adapter. It makes no network call; use
// Check to verify the bot token at start-up. Errors never contain secrets.
func New(cfg Config) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	served, err := newWorkspaces(cfg.TeamIDs)
	if err != nil {
		return nil, fmt.Errorf("slack config: %w", err)
	}
	a := &Adapter{
		served: served,
		cfg:    cfg,
		log:    cfg.Logger.With("platform", bot.Slack),
		seen:   newRecent(dedupTTL, dedupMax, cfg.Now),
		sleep:  sleepCtx,
		slots:  make(chan struct{}, maxNotices),
	}
	a.api = slack.New(cfg.BotToken, a.clientOptions()...)
	return a, nil
}

func (a *Adapter) clientOptions() []slack.Option {
	return []slack.Option{
		slack.OptionAPIURL(a.cfg.APIURL),
		slack.OptionHTTPClient(apiHTTPClient(a.cfg.HTTPClient)),
	}
}

// Attach sets where incoming commands go (normally the core's
// *bot.Dispatcher). It is safe to call while requests arrive; the last call
// wins.
func (a *Adapter) Attach(s Submitter) {
	a.sub.Store(&submitterBox{s: s})
}

// Platform returns bot.Slack.
func (a *Adapter) Platform() string { return bot.Slack }

// Check calls auth.test to verify the bot token and remembers the bot's
// user id (used to strip mentions) and its workspace, whose requests are
// then served (with Config.TeamIDs); until Check has run, only the
// workspaces of Config.TeamIDs are. A rejected token gives an error naming
// C2_SLACK_BOT_TOKEN, never the token itself.
func (a *Adapter) Check(ctx context.Context) error {
	var resp *authTestResponse
	err := a.call(ctx, "auth.test", func(ctx context.Context) error {
		var err error
		resp, err = a.authTest(ctx)
		return err
	})
	if err != nil {
		if code := slackErrorCode(err); authErrors[code] {
			return fmt.Errorf("slack auth.test: the bot token was refused (%s); check C2_SLACK_BOT_TOKEN", code)
		}
		return fmt.Errorf("slack auth.test: %w", err)
	}
	id := resp.UserID
	a.botID.Store(&id)
	if missing := a.MissingHistoryScopes(); len(missing) > 0 {
		a.log.WarnContext(ctx, "the bot token lacks scopes c2bot uses to find a notice it may already have posted; "+
			"an interrupted notice will be posted again (grant them as in the app manifest)", "missing", strings.Join(missing, ","))
	}
	a.served.learn(resp.TeamID, resp.EnterpriseID, resp.IsEnterpriseInstall)
	a.log.InfoContext(ctx, "slack connected", "team", resp.Team, "team_id", resp.TeamID, "enterprise_id", resp.EnterpriseID,
		"enterprise_install", resp.IsEnterpriseInstall, "bot_user", resp.User, "bot_user_id", resp.UserID)
	return nil
}

// authTestResponse is auth.test's answer. slack-go's AuthTestResponse has
// no is_enterprise_install, which tells an organisation-wide install
// (docs.slack.dev/reference/methods/auth.test; api.slack.com/enterprise/apps/reference).
type authTestResponse struct {
	OK                  bool   `json:"ok"`
	Error               string `json:"error"`
	Team                string `json:"team"`
	TeamID              string `json:"team_id"`
	User                string `json:"user"`
	UserID              string `json:"user_id"`
	EnterpriseID        string `json:"enterprise_id"`
	IsEnterpriseInstall bool   `json:"is_enterprise_install"`
}

// authTest calls auth.test directly (the token goes in the Authorization
// header, as for every call). Errors take slack-go's types, so call and
// the error classification treat them like any other call's.
func (a *Adapter) authTest(ctx context.Context) (*authTestResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.APIURL+"auth.test", nil)
	if err != nil {
		return nil, fmt.Errorf("auth.test request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.BotToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusTooManyRequests {
		wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		return nil, &slack.RateLimitedError{RetryAfter: time.Duration(wait) * time.Second}
	}
	if res.StatusCode != http.StatusOK {
		return nil, slack.StatusCodeError{Code: res.StatusCode, Status: res.Status}
	}
	var out authTestResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("auth.test: decode answer: %w", err)
	}
	if !out.OK {
		return nil, slack.SlackErrorResponse{Err: out.Error}
	}
	// Web API answers name the token's scopes in X-OAuth-Scopes (what
	// Slack's SDKs surface as response_metadata.scopes,
	// docs.slack.dev/tools/node-slack-sdk/reference/web-api/interfaces/WebAPICallResult).
	if h := res.Header.Get("X-OAuth-Scopes"); h != "" {
		var scopes []string
		for sc := range strings.SplitSeq(h, ",") {
			if sc = strings.TrimSpace(sc); sc != "" {
				scopes = append(scopes, sc)
			}
		}
		a.scopes.Store(&scopes)
	}
	return &out, nil
}

// historyScopes are the scopes Find reads conversations with (find.go).
var historyScopes = []string{"channels:history", "groups:history", "im:history"}

// MissingHistoryScopes lists the *:history scopes the bot token lacks, as
// auth.test (Check) reported its scopes; nil when it has them all or when
// Slack did not say.
func (a *Adapter) MissingHistoryScopes() []string {
	p := a.scopes.Load()
	if p == nil {
		return nil
	}
	var missing []string
	for _, want := range historyScopes {
		if !slices.Contains(*p, want) {
			missing = append(missing, want)
		}
	}
	return missing
}

func (a *Adapter) botUserID() string {
	if p := a.botID.Load(); p != nil {
		return *p
	}
	return ""
}

// Post sends msg to conv with chat.postMessage, threaded under conv.Thread
// when set, and returns the new message's reference (ID is its ts).
// Permanent failures (channel gone, bot removed, token revoked) wrap
// bot.ErrUndeliverable.
func (a *Adapter) Post(ctx context.Context, conv bot.Conversation, msg bot.Message) (bot.MessageRef, error) {
	opts := messageOptions(msg)
	if conv.Thread != "" {
		opts = append(opts, slack.MsgOptionTS(conv.Thread))
	}
	var ts string
	err := a.call(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		_, ts, err = a.api.PostMessageContext(ctx, conv.ID, opts...)
		return err
	})
	if err != nil {
		return bot.MessageRef{}, fmt.Errorf("slack post to %s: %w", conv.ID, err)
	}
	return bot.MessageRef{Conv: conv, ID: ts}, nil
}

// Update replaces the message at ref with msg using chat.update.
func (a *Adapter) Update(ctx context.Context, ref bot.MessageRef, msg bot.Message) error {
	opts := messageOptions(msg)
	err := a.call(ctx, "chat.update", func(ctx context.Context) error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, ref.Conv.ID, ref.ID, opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("slack update %s/%s: %w", ref.Conv.ID, ref.ID, err)
	}
	return nil
}

// PostEphemeral shows msg to user only, with chat.postEphemeral.
func (a *Adapter) PostEphemeral(ctx context.Context, conv bot.Conversation, user bot.User, msg bot.Message) error {
	opts := messageOptions(msg)
	if conv.Thread != "" {
		opts = append(opts, slack.MsgOptionTS(conv.Thread))
	}
	err := a.call(ctx, "chat.postEphemeral", func(ctx context.Context) error {
		_, err := a.api.PostEphemeralContext(ctx, conv.ID, user.ID, opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("slack ephemeral to %s in %s: %w", user.ID, conv.ID, err)
	}
	return nil
}

// Close waits for background notices (the "busy" replies) to finish.
func (a *Adapter) Close() {
	a.notify.Wait()
}

// messageOptions renders msg for chat.postMessage, chat.update and
// chat.postEphemeral. The fallback text is escaped and sent with mrkdwn off,
// so it pings nobody either; links are not unfurled.
func messageOptions(msg bot.Message) []slack.MsgOption {
	blocks, fallback := render(msg)
	return []slack.MsgOption{
		slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionText(fallback, true),
		slack.MsgOptionDisableMarkdown(),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
}

// call runs one Web API call, waiting out rate limits (429 with
// Retry-After) a bounded number of times, and classifies the final error.
func (a *Adapter) call(ctx context.Context, method string, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		wait, limited := retryAfter(err)
		if !limited {
			return a.redact(classify(err))
		}
		if attempt >= maxRateLimitRetries || wait > maxRetryAfter {
			return a.redact(fmt.Errorf("%s still rate limited after %d attempts: %w", method, attempt+1, err))
		}
		a.log.WarnContext(ctx, "slack rate limited", "method", method, "retry_after", wait.String(), "attempt", attempt+1)
		if err := a.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s: waiting out rate limit: %w", method, err)
		}
	}
}

// redact removes the tokens and the signing secret (and any credential
// an answer might quote) from err's text; errors.Is and errors.As still see
// the chain.
func (a *Adapter) redact(err error) error {
	return bot.RedactError(err, a.cfg.BotToken, a.cfg.AppToken, a.cfg.SigningSecret)
}

// retryAfter reports whether err is a rate limit and how long to wait.
func retryAfter(err error) (time.Duration, bool) {
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return max(rl.RetryAfter, time.Second), true
	}
	if sc, ok := errors.AsType[slack.StatusCodeError](err); ok && sc.Code == http.StatusTooManyRequests {
		return time.Second, true
	}
	return 0, false
}

// permanentErrors are Slack error codes that retrying the same call will
// not fix: the conversation or message is gone, the bot is not allowed
// there, or its token is dead.
var permanentErrors = map[string]bool{
	"channel_not_found":       true,
	"not_in_channel":          true,
	"is_archived":             true,
	"invalid_auth":            true,
	"account_inactive":        true,
	"token_revoked":           true,
	"token_expired":           true,
	"not_authed":              true,
	"no_permission":           true,
	"user_not_in_channel":     true,
	"message_not_found":       true,
	"cant_update_message":     true,
	"edit_window_closed":      true,
	"restricted_action":       true,
	"team_access_not_granted": true,
	"invalid_blocks":          true,
	"msg_too_long":            true,
	"too_many_attachments":    true,
}

// authErrors are the codes auth.test answers for a bad token.
var authErrors = map[string]bool{
	"invalid_auth": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "not_authed": true,
}

// classify wraps bot.ErrUndeliverable around permanent Slack errors; every
// other error (network, 5xx, rate limit) stays transient.
func classify(err error) error {
	if code := slackErrorCode(err); permanentErrors[code] {
		return fmt.Errorf("%w: %w", bot.ErrUndeliverable, err)
	}
	return err
}

func slackErrorCode(err error) string {
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		return se.Err
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// submit hands cmd to the attached submitter. It reports whether the
// command was accepted, and a user-facing reason when it was not.
func (a *Adapter) submit(cmd bot.Command) (bool, string) {
	box := a.sub.Load()
	if box == nil || box.s == nil {
		return false, "c2bot is starting, try again in a moment"
	}
	if !box.s.Submit(cmd) {
		return false, "c2bot is busy, try again in a minute"
	}
	return true, ""
}

// noticeLater posts an ephemeral notice after the platform has been
// acknowledged. At most maxNotices run at once; beyond that the notice is
// only logged.
func (a *Adapter) noticeLater(conv bot.Conversation, user bot.User, text string) {
	select {
	case a.slots <- struct{}{}:
	default:
		a.log.Warn("slack notice dropped", "channel", conv.ID, "user", user.ID, "notice", text)
		return
	}
	a.notify.Add(1)
	go func() {
		defer a.notify.Done()
		defer func() { <-a.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
		defer cancel()
		if err := a.PostEphemeral(ctx, conv, user, bot.Message{Text: text}); err != nil {
			a.log.WarnContext(ctx, "slack notice failed", "channel", conv.ID, "user", user.ID, "err", err)
		}
	}()
}
