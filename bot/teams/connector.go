package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/c2bot/c2bot/bot"
)

// outActivity is an activity the bot sends. It is not schema.Activity:
// that type always writes its zero timestamps and empty objects
// ("expiration":"0001-01-01…"), which the connector has no use for.
type outActivity struct {
	Type         schema.ActivityTypes        `json:"type"`
	ID           string                      `json:"id,omitempty"`
	From         *schema.ChannelAccount      `json:"from,omitempty"`
	Conversation *schema.ConversationAccount `json:"conversation,omitempty"`
	ReplyToID    string                      `json:"replyToId,omitempty"`
	Text         string                      `json:"text,omitempty"`
	Summary      string                      `json:"summary,omitempty"`
	Attachments  []schema.Attachment         `json:"attachments,omitempty"`
	ChannelData  map[string]any              `json:"channelData,omitempty"`
}

// decodeRef reads the conversation reference an inbound activity left in
// conv.Ref. A conversation without one cannot be addressed: the error wraps
// bot.ErrUndeliverable.
func decodeRef(conv bot.Conversation) (schema.ConversationReference, error) {
	var ref schema.ConversationReference
	if len(conv.Ref) == 0 {
		return ref, fmt.Errorf("teams conversation %q has no reference: %w", conv.ID, bot.ErrUndeliverable)
	}
	if err := json.Unmarshal(conv.Ref, &ref); err != nil {
		return ref, fmt.Errorf("teams conversation %q: bad reference: %w", conv.ID, bot.ErrUndeliverable)
	}
	u, err := url.Parse(ref.ServiceURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ref, fmt.Errorf("teams conversation %q: reference has no usable serviceUrl: %w", conv.ID, bot.ErrUndeliverable)
	}
	if ref.Conversation.ID == "" {
		ref.Conversation.ID, _ = splitConversationID(conv.ID)
	}
	return ref, nil
}

// addressedID returns the conversation id to address: in a channel, a
// threaded conversation is "channel;messageid=root".
func addressedID(ref schema.ConversationReference, thread string) string {
	id := ref.Conversation.ID
	if thread != "" && ref.Conversation.ConversationType == "channel" && !strings.Contains(id, channelThreadMarker) {
		id += channelThreadMarker + thread
	}
	return id
}

// newActivity builds the message activity that shows msg as a card.
func newActivity(ref schema.ConversationReference, convID string, msg bot.Message) outActivity {
	act := outActivity{
		Type: schema.Message,
		Conversation: &schema.ConversationAccount{
			ID: convID, TenantID: ref.Conversation.TenantID,
			ConversationType: ref.Conversation.ConversationType, IsGroup: ref.Conversation.IsGroup,
		},
		Summary:     summary(msg),
		Attachments: []schema.Attachment{{ContentType: cardContentType, Content: renderCard(msg)}},
	}
	if ref.Bot.ID != "" {
		act.From = &schema.ChannelAccount{ID: ref.Bot.ID, Name: ref.Bot.Name}
	}
	if ref.Conversation.TenantID != "" {
		act.ChannelData = map[string]any{"tenant": map[string]any{"id": ref.Conversation.TenantID}}
	}
	return act
}

// summary is the notification preview of msg.
func summary(m bot.Message) string {
	s := m.Title
	if s == "" {
		s = m.Text
	}
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return s
}

// Post sends msg as an Adaptive Card to conv: as a reply to conv.Thread
// when set (POST …/activities/{thread}), else as a new message (POST
// …/activities). It returns a reference to the new message for Update. An
// error wrapping bot.ErrUndeliverable means the conversation cannot be
// reached any more (no reference, 404 ConversationNotFound, 403
// BotNotInConversationRoster); any other error is transient.
func (a *Adapter) Post(ctx context.Context, conv bot.Conversation, msg bot.Message) (bot.MessageRef, error) {
	ref, err := decodeRef(conv)
	if err != nil {
		return bot.MessageRef{}, err
	}
	convID := addressedID(ref, conv.Thread)
	act := newActivity(ref, convID, msg)
	path := "v3/conversations/" + url.PathEscape(convID) + "/activities"
	if conv.Thread != "" {
		act.ReplyToID = conv.Thread
		path += "/" + url.PathEscape(conv.Thread)
	}
	var res schema.ResourceResponse
	if err := a.call(ctx, http.MethodPost, ref.ServiceURL, path, act, &res); err != nil {
		return bot.MessageRef{}, fmt.Errorf("post to teams conversation: %w", err)
	}
	a.settleInvokes(conv, msg)
	return bot.MessageRef{Conv: conv, ID: res.ID}, nil
}

// Update replaces the card at ref with msg. When ref is the card of an
// Action.Execute click still waiting for its answer, the new card becomes
// that answer (Teams replaces the card in place); otherwise it is sent with
// PUT …/activities/{id}. Errors are classified as for Post.
func (a *Adapter) Update(ctx context.Context, ref bot.MessageRef, msg bot.Message) error {
	if ref.ID == "" {
		return fmt.Errorf("teams update: message has no id: %w", bot.ErrUndeliverable)
	}
	if a.answerInvoke(ref, msg) {
		return nil
	}
	cref, err := decodeRef(ref.Conv)
	if err != nil {
		return err
	}
	convID := addressedID(cref, ref.Conv.Thread)
	act := newActivity(cref, convID, msg)
	act.ID = ref.ID
	path := "v3/conversations/" + url.PathEscape(convID) + "/activities/" + url.PathEscape(ref.ID)
	if err := a.call(ctx, http.MethodPut, cref.ServiceURL, path, act, nil); err != nil {
		return fmt.Errorf("update teams message: %w", err)
	}
	return nil
}

// connectorError is a failed Bot Connector call.
type connectorError struct {
	Status  int
	Code    string
	Message string
}

func (e *connectorError) Error() string {
	s := fmt.Sprintf("bot connector: status %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap makes statuses that retrying cannot fix match bot.ErrUndeliverable:
// 400 (the activity is refused), 403 (BotNotInConversationRoster, bot
// blocked), 404 (ConversationNotFound), 410 and 413.
func (e *connectorError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusGone, http.StatusRequestEntityTooLarge:
		return bot.ErrUndeliverable
	}
	return nil
}

// call sends one Bot Connector request and decodes the JSON answer into out
// (when non-nil and the answer has a body).
func (a *Adapter) call(ctx context.Context, method, serviceURL, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, connectorTimeout)
	defer cancel()
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode activity: %w", err)
	}
	if a.auth == nil && !isLoopbackURL(serviceURL) {
		// Unauthenticated, nothing vouches for a serviceUrl: replies (and
		// with them approval cards) go to this machine only.
		return fmt.Errorf("teams: unauthenticated mode sends only to a loopback serviceUrl: %w", bot.ErrUndeliverable)
	}
	endpoint := strings.TrimRight(serviceURL, "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, method, endpoint, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	authz, err := a.token(ctx)
	if err != nil {
		return err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("bot connector: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ce := &connectorError{Status: resp.StatusCode}
		var er schema.ErrorResponse
		if json.Unmarshal(data, &er) == nil {
			ce.Code, ce.Message = er.Error.Code, truncate(bot.Redact(er.Error.Message), 200)
		}
		return ce
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("bot connector: decode answer: %w", err)
		}
	}
	return nil
}

// redactURLError drops the query string from a *url.Error (a connector URL
// carries none today, but errors are logged).
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
