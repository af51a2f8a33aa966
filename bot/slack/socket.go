package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// RunSocketMode connects to Slack over Socket Mode with the app token and
// serves slash commands, button clicks and app mentions until ctx ends
// (then it returns nil). Every envelope is acknowledged at once; the
// command then runs on the attached Submitter, as in HTTP mode. It
// reconnects by itself when Slack asks; it returns an error naming
// C2_SLACK_APP_TOKEN when the token is refused.
func (a *Adapter) RunSocketMode(ctx context.Context) error {
	if a.cfg.AppToken == "" {
		return errors.New("slack socket mode: C2_SLACK_APP_TOKEN is not set")
	}
	api := slack.New(a.cfg.BotToken, append(a.clientOptions(), slack.OptionAppLevelToken(a.cfg.AppToken))...)
	sm := socketmode.New(api, a.socketOptions...)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- sm.RunContext(runCtx) }()
	for {
		select {
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			if code := slackErrorCode(err); authErrors[code] || err.Error() == "invalid_auth" {
				return fmt.Errorf("slack socket mode: the app token was refused (%s); check C2_SLACK_APP_TOKEN", a.redact(err).Error())
			}
			return fmt.Errorf("slack socket mode: %w", a.redact(err))
		case evt := <-sm.Events:
			a.handleSocketEvent(runCtx, sm, evt)
		}
	}
}

// handleSocketEvent acknowledges one Socket Mode envelope and submits its
// command.
func (a *Adapter) handleSocketEvent(ctx context.Context, sm *socketmode.Client, evt socketmode.Event) {
	ack := func(payload any) {
		if evt.Request == nil || evt.Request.EnvelopeID == "" {
			return
		}
		if err := sm.AckCtx(ctx, evt.Request.EnvelopeID, payload); err != nil {
			a.log.WarnContext(ctx, "slack socket ack failed", "envelope_id", evt.Request.EnvelopeID, "err", err)
		}
	}
	retry := evt.Request != nil && evt.Request.RetryAttempt > 0
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		sc, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			ack(nil)
			return
		}
		ack(a.slashAck(sc, retry))
	case socketmode.EventTypeInteractive:
		ack(nil)
		if ic, ok := evt.Data.(slack.InteractionCallback); ok {
			a.handleInteraction(ic, retry)
		}
	case socketmode.EventTypeEventsAPI:
		ack(nil)
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			a.handleEvent(ev, retry)
		}
	case socketmode.EventTypeErrorBadMessage:
		// An envelope slack-go cannot parse (an event type it does not
		// know): acknowledge it anyway so Slack does not redeliver it.
		if bad, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var env struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if json.Unmarshal(bad.Message, &env) == nil && env.EnvelopeID != "" {
				if err := sm.AckCtx(ctx, env.EnvelopeID, nil); err != nil {
					a.log.WarnContext(ctx, "slack socket ack failed", "envelope_id", env.EnvelopeID, "err", err)
				}
			}
			a.log.DebugContext(ctx, "slack socket message ignored", "err", a.redact(bad.Cause))
		}
	case socketmode.EventTypeConnected:
		a.log.InfoContext(ctx, "slack socket mode connected")
	case socketmode.EventTypeConnectionError:
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			a.log.WarnContext(ctx, "slack socket mode connection failed", "attempt", ce.Attempt, "backoff", ce.Backoff.String(), "err", a.redact(ce.ErrorObj))
		}
	case socketmode.EventTypeInvalidAuth:
		a.log.ErrorContext(ctx, "slack socket mode: app token refused")
	default:
		a.log.DebugContext(ctx, "slack socket event", "type", string(evt.Type))
	}
}
