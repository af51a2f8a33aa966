package slack

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"github.com/c2bot/c2bot/bot"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// fromSlashCommand maps "/c2 diagnose contoso" to a Command whose Text is
// "diagnose contoso" and whose ID is the delivery's trigger_id. Slack may
// deliver &, < and > escaped, as in message text; they are decoded, so a
// reason reads as typed (a literal "&amp;" typed by someone becomes "&").
func fromSlashCommand(sc slack.SlashCommand) bot.Command {
	return bot.Command{
		ID:   sc.TriggerID,
		User: bot.User{ID: sc.UserID, Name: sc.UserName},
		Conv: bot.Conversation{Platform: bot.Slack, ID: sc.ChannelID},
		Text: strings.TrimSpace(unescape(sc.Text)),
	}
}

// fromBlockActions maps a button click to the command the button stands
// for. It reports false for anything else (selects, views, empty values).
func fromBlockActions(ic slack.InteractionCallback) (bot.Command, bool) {
	if ic.Type != slack.InteractionTypeBlockActions || len(ic.ActionCallback.BlockActions) == 0 {
		return bot.Command{}, false
	}
	act := ic.ActionCallback.BlockActions[0]
	// Slack sends an app only clicks on its own messages; every button
	// c2bot draws carries its command as value (the core authorises it).
	if act.Type != slack.ActionType(slack.METButton) || act.Value == "" {
		return bot.Command{}, false
	}
	channel := ic.Channel.ID
	if channel == "" {
		channel = ic.Container.ChannelID
	}
	if channel == "" {
		return bot.Command{}, false
	}
	thread := ic.Message.ThreadTimestamp
	if thread == "" {
		thread = ic.Container.ThreadTs
	}
	msgTS := ic.Container.MessageTs
	if msgTS == "" {
		msgTS = ic.Message.Timestamp
	}
	conv := bot.Conversation{Platform: bot.Slack, ID: channel, Thread: thread}
	name := ic.User.Name
	if name == "" {
		name = ic.User.Username
	}
	return bot.Command{
		ID:     clickID(act.ActionTs, ic.User.ID, act.Value),
		User:   bot.User{ID: ic.User.ID, Name: name},
		Conv:   conv,
		Text:   strings.TrimSpace(act.Value),
		Origin: &bot.MessageRef{Conv: conv, ID: msgTS},
	}, true
}

// clickID is a stable id for one click: a redelivery carries the same
// action_ts, user and value; a second click has a new action_ts.
func clickID(actionTS, userID, value string) string {
	sum := sha256.Sum256([]byte(value))
	return "click:" + actionTS + ":" + userID + ":" + hex.EncodeToString(sum[:8])
}

// mention matches a user mention as Slack encodes it: <@U123> or <@U123|name>.
var mention = regexp.MustCompile(`<@([A-Z0-9]+)(?:\|[^>]*)?>`)

// fromAppMention maps "@c2 diagnose" to a Command with Text "diagnose". It
// strips the bot's own mention (or, before Check has learnt the bot's id,
// a leading mention) and decodes Slack's &amp; &lt; &gt;. Messages from bots
// are ignored so two bots cannot talk to each other forever.
func fromAppMention(eventID string, ev *slackevents.AppMentionEvent, botUserID string) (bot.Command, bool) {
	if ev == nil || ev.BotID != "" || ev.User == "" || ev.Channel == "" {
		return bot.Command{}, false
	}
	text := ev.Text
	if botUserID != "" {
		text = mention.ReplaceAllStringFunc(text, func(m string) string {
			if mention.FindStringSubmatch(m)[1] == botUserID {
				return " "
			}
			return m
		})
	} else if loc := mention.FindStringIndex(strings.TrimSpace(text)); loc != nil && loc[0] == 0 {
		text = strings.TrimSpace(text)[loc[1]:]
	}
	text = strings.Join(strings.Fields(unescape(text)), " ")
	text = strings.TrimPrefix(text, "/c2 ")
	conv := bot.Conversation{Platform: bot.Slack, ID: ev.Channel, Thread: ev.ThreadTimeStamp}
	return bot.Command{
		ID:   eventID,
		User: bot.User{ID: ev.User},
		Conv: conv,
		Text: text,
	}, true
}

// accept runs the redelivery check and submits cmd. It reports whether the
// platform should be told "busy" (and why); a redelivery is silently
// accepted.
func (a *Adapter) accept(cmd bot.Command, retry bool) (ok bool, reason string) {
	if !a.seen.claim(cmd.ID) {
		a.log.Info("slack redelivery ignored", "command_id", cmd.ID, "retry", retry)
		return true, ""
	}
	ok, reason = a.submit(cmd)
	if ok {
		a.log.Info("slack command accepted", "command_id", cmd.ID, "channel", cmd.Conv.ID, "user", cmd.User.ID)
	} else {
		a.seen.forget(cmd.ID) // not run: a retry may try again
		a.refused("busy")
		a.log.Warn("slack command refused", "command_id", cmd.ID, "reason", reason)
	}
	return ok, reason
}

// refused counts an inbound request the adapter refused.
func (a *Adapter) refused(reason string) {
	if a.cfg.OnRefused != nil {
		a.cfg.OnRefused(reason)
	}
}
