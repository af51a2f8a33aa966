package slacktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sign sets X-Slack-Request-Timestamp and X-Slack-Signature on req for body,
// as Slack signs requests with the app's signing secret.
func Sign(req *http.Request, secret string, body []byte, now time.Time) {
	ts := unixString(now)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
}

// SlashCommand describes a typed "/c2 …" command.
type SlashCommand struct {
	ChannelID, UserID, UserName, Text, TriggerID string
}

// NewSlashCommandRequest returns a signed POST of cmd to target (the
// adapter's /slack/commands URL), form-encoded as Slack sends it.
func NewSlashCommandRequest(target, secret string, now time.Time, cmd SlashCommand) *http.Request {
	form := url.Values{
		"token":        {"verification-token-unused"},
		"team_id":      {TeamID},
		"team_domain":  {"c2-test"},
		"channel_id":   {cmd.ChannelID},
		"channel_name": {"c2-test"},
		"user_id":      {cmd.UserID},
		"user_name":    {cmd.UserName},
		"command":      {"/c2"},
		"text":         {cmd.Text},
		"api_app_id":   {"A0C2TEST"},
		"response_url": {"https://hooks.slack.com/commands/T0C2TEST/1/x"},
		"trigger_id":   {cmd.TriggerID},
	}
	return signedForm(target, secret, now, form)
}

// ClickPayload is the block_actions payload Slack sends when userID clicks
// btn on msg (actionTS distinguishes clicks; redeliveries repeat it).
func ClickPayload(msg Message, btn Button, userID, userName, actionTS string) map[string]any {
	container := map[string]any{
		"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel, "is_ephemeral": msg.Ephemeral,
	}
	message := map[string]any{"type": "message", "bot_id": BotID, "text": msg.Text, "ts": msg.TS}
	if msg.ThreadTS != "" {
		container["thread_ts"] = msg.ThreadTS
		message["thread_ts"] = msg.ThreadTS
	}
	return map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": userID, "username": userName, "name": userName, "team_id": TeamID},
		"api_app_id":   "A0C2TEST",
		"token":        "verification-token-unused",
		"container":    container,
		"trigger_id":   "trigger." + actionTS,
		"team":         map[string]any{"id": TeamID, "domain": "c2-test"},
		"channel":      map[string]any{"id": msg.Channel, "name": "c2-test"},
		"message":      message,
		"response_url": "https://hooks.slack.com/actions/T0C2TEST/1/x",
		"actions": []any{map[string]any{
			"action_id": btn.ActionID, "block_id": btn.BlockID, "type": "button", "value": btn.Value,
			"text":      map[string]any{"type": "plain_text", "text": btn.Label, "emoji": true},
			"action_ts": actionTS,
		}},
	}
}

// NewInteractionRequest returns a signed POST of payload to target (the
// adapter's /slack/interactions URL), as payload=<json>.
func NewInteractionRequest(target, secret string, now time.Time, payload any) *http.Request {
	raw, err := json.Marshal(payload)
	if err != nil {
		panic("slacktest: payload does not marshal: " + err.Error())
	}
	return signedForm(target, secret, now, url.Values{"payload": {string(raw)}})
}

// NewEventRequest returns a signed POST of an Events API body to target
// (the adapter's /slack/events URL).
func NewEventRequest(target, secret string, now time.Time, body any) *http.Request {
	raw, err := json.Marshal(body)
	if err != nil {
		panic("slacktest: event does not marshal: " + err.Error())
	}
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	Sign(req, secret, raw, now)
	return req
}

// AppMention is an Events API body for "@c2 text" typed by userID in
// channel.
func AppMention(eventID, channel, userID, text string) map[string]any {
	return map[string]any{
		"token": "verification-token-unused", "team_id": TeamID, "api_app_id": "A0C2TEST",
		"type": "event_callback", "event_id": eventID, "event_time": 1700000000,
		"event": map[string]any{
			"type": "app_mention", "user": userID, "text": "<@" + BotUserID + "> " + text,
			"ts": "1700000000.000100", "channel": channel, "event_ts": "1700000000.000100",
		},
	}
}

func signedForm(target, secret string, now time.Time, form url.Values) *http.Request {
	body := form.Encode()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	Sign(req, secret, []byte(body), now)
	return req
}
