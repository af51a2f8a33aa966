package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// HTTP mode limits.
const (
	// MaxBodyBytes is the largest request body accepted from Slack; larger
	// requests get 413.
	MaxBodyBytes = 64 << 10
	// signatureWindow is how far X-Slack-Request-Timestamp may be from now.
	signatureWindow = 5 * time.Minute
)

// Paths served by Handler.
const (
	PathCommands     = "/slack/commands"
	PathInteractions = "/slack/interactions"
	PathEvents       = "/slack/events"
)

// Handler returns the HTTP-mode endpoints: POST /slack/commands (slash
// commands), POST /slack/interactions (button clicks) and POST /slack/events
// (app_mention and the url_verification challenge). Mount it at "/slack/".
//
// Every request must carry a valid v0 signature made with the signing
// secret within five minutes of Config.Now: a missing or wrong signature or
// a stale timestamp gets 401, a body over MaxBodyBytes 413. Valid requests
// are acknowledged at once and their command runs on the attached
// Submitter. Without a signing secret every request gets 404.
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+PathCommands, a.verified(a.serveCommand))
	mux.Handle("POST "+PathInteractions, a.verified(a.serveInteraction))
	mux.Handle("POST "+PathEvents, a.verified(a.serveEvent))
	return mux
}

// verified reads the body (bounded), checks the signature and passes the
// raw body on.
func (a *Adapter) verified(next func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.SigningSecret == "" {
			http.Error(w, "slack HTTP mode is not configured", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				a.refused("too_large")
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			a.refused("bad_request")
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return
		}
		if err := verifySignature(r.Header, body, a.cfg.SigningSecret, a.cfg.Now()); err != nil {
			a.log.WarnContext(r.Context(), "slack request refused", "path", r.URL.Path, "reason", err.Error())
			if errors.Is(err, errStaleTimestamp) {
				a.refused("stale")
			} else {
				a.refused("bad_signature")
			}
			http.Error(w, "invalid slack signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		next(w, r, body)
	})
}

var (
	errMissingSignature = errors.New("missing X-Slack-Signature or X-Slack-Request-Timestamp")
	errBadTimestamp     = errors.New("malformed timestamp")
	errStaleTimestamp   = errors.New("timestamp outside the 5 minute window")
	errBadSignature     = errors.New("signature mismatch")
)

// verifySignature checks Slack's v0 signature: HMAC-SHA256 over
// "v0:{timestamp}:{body}" with the signing secret, compared in constant
// time, with the timestamp within signatureWindow of now.
func verifySignature(h http.Header, body []byte, secret string, now time.Time) error {
	sig := h.Get("X-Slack-Signature")
	ts := h.Get("X-Slack-Request-Timestamp")
	if sig == "" || ts == "" {
		return errMissingSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errBadTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > signatureWindow || d < -signatureWindow {
		return errStaleTimestamp
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return errBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return errBadSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errBadSignature
	}
	return nil
}

// retryHeader returns the X-Slack-Retry-Num header ("" for a first delivery).
func retryHeader(r *http.Request) string { return r.Header.Get("X-Slack-Retry-Num") }

// serveCommand answers a slash command at once with an ephemeral "working
// on it" (or why it cannot) and runs the command in the background.
func (a *Adapter) serveCommand(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return
	}
	if form.Get("ssl_check") == "1" {
		w.WriteHeader(http.StatusOK) // Slack checking the certificate
		return
	}
	sc := slashCommandFromForm(form)
	if sc.UserID == "" || sc.ChannelID == "" {
		http.Error(w, "not a slash command", http.StatusBadRequest)
		return
	}
	writeJSON(w, a.slashAck(sc, retryHeader(r) != ""))
}

// slashOrigin is where a slash command comes from.
func slashOrigin(sc slack.SlashCommand) origin {
	return origin{team: sc.TeamID, enterprise: sc.EnterpriseID}
}

// slashAck submits the command and returns the ephemeral response Slack
// shows the user who typed it (the HTTP body, or the Socket Mode ack
// payload). A command from a workspace c2bot does not serve is answered
// with the reason and not run.
func (a *Adapter) slashAck(sc slack.SlashCommand, retry bool) map[string]string {
	if why := a.served.refusal(slashOrigin(sc)); why != "" {
		a.refused("wrong_workspace")
		a.log.Warn("slack command from another workspace refused", "team_id", sc.TeamID, "enterprise_id", sc.EnterpriseID, "user", sc.UserID)
		return map[string]string{"response_type": "ephemeral", "text": why}
	}
	cmd := fromSlashCommand(sc)
	ok, reason := a.accept(cmd, retry)
	text := reason
	if ok {
		text = workingOn(cmd.Text)
	}
	return map[string]string{"response_type": "ephemeral", "text": text}
}

// workingOn is the acknowledgement shown to the person who typed a command.
func workingOn(cmd string) string {
	if cmd == "" {
		return "Working on it…"
	}
	cmd = strings.ReplaceAll(truncate(cmd, 200), "`", "'")
	return "Working on `" + escape(cmd) + "`…"
}

func slashCommandFromForm(f url.Values) slack.SlashCommand {
	return slack.SlashCommand{
		Token:          f.Get("token"),
		TeamID:         f.Get("team_id"),
		TeamDomain:     f.Get("team_domain"),
		EnterpriseID:   f.Get("enterprise_id"),
		EnterpriseName: f.Get("enterprise_name"),
		ChannelID:      f.Get("channel_id"),
		ChannelName:    f.Get("channel_name"),
		UserID:         f.Get("user_id"),
		UserName:       f.Get("user_name"),
		Command:        f.Get("command"),
		Text:           f.Get("text"),
		ResponseURL:    f.Get("response_url"),
		TriggerID:      f.Get("trigger_id"),
		APIAppID:       f.Get("api_app_id"),
	}
}

// serveInteraction acknowledges a block_actions payload with an empty 200
// and runs the clicked button's command.
func (a *Adapter) serveInteraction(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		http.Error(w, "missing payload", http.StatusBadRequest)
		return
	}
	var ic slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &ic); err != nil {
		http.Error(w, "malformed payload", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	a.handleInteraction(ic, retryHeader(r) != "")
}

// handleInteraction submits a click; when the core cannot take it, the
// clicker is told so in an ephemeral message.
func (a *Adapter) handleInteraction(ic slack.InteractionCallback, retry bool) {
	cmd, ok := fromBlockActions(ic)
	if !ok {
		a.log.Debug("slack interaction ignored", "type", string(ic.Type))
		return
	}
	o := origin{team: ic.Team.ID, enterprise: ic.Team.EnterpriseID, userTeam: ic.User.TeamID}
	if o.enterprise == "" {
		o.enterprise = ic.Enterprise.ID
	}
	if why := a.served.refusal(o); why != "" {
		a.refused("wrong_workspace")
		a.log.Warn("slack click from another workspace refused", "team_id", o.team, "user_team", o.userTeam, "enterprise_id", o.enterprise, "user", cmd.User.ID)
		a.noticeLater(cmd.Conv, cmd.User, why)
		return
	}
	if ok, reason := a.accept(cmd, retry); !ok {
		a.noticeLater(cmd.Conv, cmd.User, reason)
	}
}

// serveEvent answers the url_verification challenge and acknowledges
// event callbacks, running app mentions as commands.
func (a *Adapter) serveEvent(w http.ResponseWriter, r *http.Request, body []byte) {
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		if !json.Valid(body) {
			http.Error(w, "malformed event", http.StatusBadRequest)
			return
		}
		// An event type this version does not know: acknowledge it, or
		// Slack keeps redelivering it.
		a.log.DebugContext(r.Context(), "slack event ignored", "reason", err.Error())
		w.WriteHeader(http.StatusOK)
		return
	}
	if ev.Type == slackevents.URLVerification {
		ch, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if !ok || ch.Challenge == "" {
			http.Error(w, "malformed challenge", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, ch.Challenge)
		return
	}
	w.WriteHeader(http.StatusOK)
	if retry := retryHeader(r); retry != "" {
		a.log.Info("slack event redelivered", "retry_num", retry, "retry_reason", r.Header.Get("X-Slack-Retry-Reason"))
	}
	a.handleEvent(ev, retryHeader(r) != "")
}

// handleEvent runs an app_mention; other events are ignored.
func (a *Adapter) handleEvent(ev slackevents.EventsAPIEvent, retry bool) {
	if ev.Type != slackevents.CallbackEvent {
		return
	}
	mention, ok := ev.InnerEvent.Data.(*slackevents.AppMentionEvent)
	if !ok {
		return
	}
	eventID := ""
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		eventID = cb.EventID
	}
	cmd, ok := fromAppMention(eventID, mention, a.botUserID())
	if !ok {
		return
	}
	o := origin{team: ev.TeamID, enterprise: ev.EnterpriseID, userTeam: mention.UserTeam, extShared: ev.IsExtSharedChannel}
	if why := a.served.refusal(o); why != "" {
		a.refused("wrong_workspace")
		a.log.Warn("slack mention from another workspace refused", "team_id", o.team, "user_team", o.userTeam, "enterprise_id", o.enterprise, "user", cmd.User.ID)
		a.noticeLater(cmd.Conv, cmd.User, why)
		return
	}
	if ok, reason := a.accept(cmd, retry); !ok {
		a.noticeLater(cmd.Conv, cmd.User, reason)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
