package teams

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/c2bot/c2bot/bot"
)

// Activity names and types handled here.
const (
	invokeAdaptiveCardAction = "adaptiveCard/action"
	// cmdKey is the key of a card action's data that holds the command.
	cmdKey = "c2cmd"
	// channelThreadMarker separates a channel id from the id of the thread's
	// root message in Teams channel conversation ids.
	channelThreadMarker = ";messageid="
)

// inActivity is an inbound activity: the Bot Framework schema, with the
// fields the generated schema types too narrowly (entities lose their
// mention data, value is not always an object, timestamps are not always
// RFC 3339) read separately.
type inActivity struct {
	schema.Activity
	Entities       []schema.Mention `json:"entities,omitempty"`
	Value          json.RawMessage  `json:"value,omitempty"`
	Timestamp      json.RawMessage  `json:"timestamp,omitempty"`
	LocalTimestamp json.RawMessage  `json:"localTimestamp,omitempty"`
	Expiration     json.RawMessage  `json:"expiration,omitempty"`
}

// parseActivity decodes an activity and checks the fields every activity
// needs.
func parseActivity(body []byte) (*inActivity, error) {
	var act inActivity
	if err := json.Unmarshal(body, &act); err != nil {
		return nil, fmt.Errorf("decode activity: %w", err)
	}
	if act.Type == "" {
		return nil, errors.New("activity has no type")
	}
	if act.ServiceURL == "" || act.Conversation.ID == "" {
		return nil, errors.New("activity has no serviceUrl or conversation")
	}
	u, err := url.Parse(act.ServiceURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("activity has a bad serviceUrl %q", act.ServiceURL)
	}
	return &act, nil
}

// splitConversationID splits a Teams channel conversation id
// "19:…@thread.tacv2;messageid=123" into the channel id and the root
// message id of the thread; other ids come back unchanged.
func splitConversationID(id string) (base, thread string) {
	base, thread, _ = strings.Cut(id, channelThreadMarker)
	return base, thread
}

// tenantID returns the activity's tenant, from the conversation or the
// Teams channel data.
func (a *inActivity) tenantID() string {
	if a.Conversation.TenantID != "" {
		return a.Conversation.TenantID
	}
	if t, ok := a.ChannelData["tenant"].(map[string]any); ok {
		if id, ok := t["id"].(string); ok {
			return id
		}
	}
	return ""
}

// tenantIDs returns every tenant id the activity carries: Teams puts the
// tenant in channelData.tenant.id (and in conversation.tenantId); both are
// checked, so one cannot be set to an allowed tenant while the other says
// otherwise.
func (a *inActivity) tenantIDs() []string {
	var ids []string
	if t, ok := a.ChannelData["tenant"].(map[string]any); ok {
		if id, ok := t["id"].(string); ok && id != "" {
			ids = append(ids, id)
		}
	}
	if a.Conversation.TenantID != "" {
		ids = append(ids, a.Conversation.TenantID)
	}
	return ids
}

// reference returns what is needed to post into the activity's
// conversation later: serviceUrl, the conversation (without a thread), its
// tenant, the bot and the channel id.
func (a *inActivity) reference() schema.ConversationReference {
	base, _ := splitConversationID(a.Conversation.ID)
	return schema.ConversationReference{
		Bot: schema.ChannelAccount{ID: a.Recipient.ID, Name: a.Recipient.Name},
		Conversation: schema.ConversationAccount{
			ID:               base,
			TenantID:         a.tenantID(),
			ConversationType: a.Conversation.ConversationType,
			IsGroup:          a.Conversation.IsGroup,
		},
		ChannelID:  a.ChannelID,
		ServiceURL: a.ServiceURL,
	}
}

// conversation returns the bot.Conversation of the activity, its
// reference serialised into Ref.
func (a *inActivity) conversation() bot.Conversation {
	base, thread := splitConversationID(a.Conversation.ID)
	ref, _ := json.Marshal(a.reference()) // plain strings: cannot fail
	return bot.Conversation{Platform: bot.Teams, ID: base, Thread: thread, Ref: ref}
}

// user returns who sent the activity: the Entra object id (stable across
// bots and chats, what approver lists hold). There is no fallback to
// from.id, a per-bot Teams id that approver lists never hold; without an
// aadObjectId the ID is empty and the adapter runs nothing for the sender.
func (a *inActivity) user() bot.User {
	return bot.User{ID: a.From.AadObjectID, Name: a.From.Name}
}

// clickCommand returns the command carried by a card action: value.c2cmd
// for Action.Submit (a message or legacy invoke whose value is the action's
// data), value.action.data.c2cmd for Action.Execute.
func (a *inActivity) clickCommand() (string, bool) {
	if len(a.Value) == 0 {
		return "", false
	}
	var v struct {
		Cmd    *string `json:"c2cmd"`
		Action struct {
			Data map[string]json.RawMessage `json:"data"`
		} `json:"action"`
	}
	if err := json.Unmarshal(a.Value, &v); err != nil {
		return "", false // not an object: not one of our cards
	}
	if v.Cmd != nil {
		return strings.TrimSpace(*v.Cmd), true
	}
	if raw, ok := v.Action.Data[cmdKey]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return strings.TrimSpace(s), true
		}
	}
	return "", false
}

// commandText returns the typed command: the text without mentions of the
// bot and without a leading "c2", "/c2" or "@c2".
func (a *inActivity) commandText() string {
	text := a.Text
	for _, e := range a.Entities {
		if e.Type != "mention" || e.Text == "" {
			continue
		}
		if a.Recipient.ID != "" && e.Mentioned.ID != a.Recipient.ID {
			continue
		}
		text = strings.ReplaceAll(text, e.Text, " ")
	}
	text = strings.NewReplacer("\u00a0", " ", "&nbsp;", " ").Replace(text)
	text = strings.TrimSpace(text)
	// A mention of the bot the entities did not describe.
	if strings.HasPrefix(text, "<at>") {
		if _, rest, ok := strings.Cut(text, "</at>"); ok {
			text = strings.TrimSpace(rest)
		}
	}
	return stripPrefix(text)
}

// stripPrefix removes one leading "c2", "/c2" or "@c2" word.
func stripPrefix(text string) string {
	for _, p := range []string{"/c2", "@c2", "c2"} {
		if len(text) < len(p) || !strings.EqualFold(text[:len(p)], p) {
			continue
		}
		rest := text[len(p):]
		if rest == "" {
			return ""
		}
		if rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == ':' || rest[0] == ',' {
			return strings.TrimSpace(strings.TrimLeft(rest, ":,"))
		}
	}
	return text
}

// command turns a message or card-action activity into a bot.Command. ok
// is false when the activity carries nothing to run (an empty message, a
// click on a card that is not ours).
func (a *inActivity) command() (cmd bot.Command, ok bool) {
	conv := a.conversation()
	cmd = bot.Command{ID: a.ID, User: a.user(), Conv: conv}
	if c, isClick := a.clickCommand(); isClick {
		cmd.Text = c
		if a.ReplyToID != "" {
			cmd.Origin = &bot.MessageRef{Conv: conv, ID: a.ReplyToID}
		}
		return cmd, c != ""
	}
	if a.Type != schema.Message {
		return cmd, false
	}
	cmd.Text = a.commandText()
	return cmd, cmd.Text != ""
}

// botAdded reports whether a conversationUpdate adds the bot itself.
func (a *inActivity) botAdded() bool {
	for _, m := range a.MembersAdded {
		if m.ID != "" && m.ID == a.Recipient.ID {
			return true
		}
	}
	return false
}
