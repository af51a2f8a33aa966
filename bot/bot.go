// Package bot is the platform-neutral chat model of c2bot: the command a
// person sends (who, where, what), the message the bot answers with
// (sections, facts and buttons whose value is a command), and the small
// interfaces that chat adapters implement (Sender) and call (Handler).
//
// The adapters bot/slack, bot/teams and bot/web translate between their
// platform and these types; they import this package and nothing else of the
// project.
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
)

// Platform names used in Conversation.Platform and returned by Sender.Platform.
const (
	Slack = "slack"
	Teams = "teams"
	Web   = "web"
)

// ErrUndeliverable wraps a Sender error that retrying will not fix (the
// channel is gone, the bot was removed). Any other Sender error is treated as
// transient and retried.
var ErrUndeliverable = errors.New("undeliverable")

// User is a person on a chat platform.
type User struct {
	// ID is the platform's stable user id (Slack "U123", the Teams user's
	// Entra object id, console "alice"). The core qualifies it with the
	// platform of the adapter that built the command (Conversation.Platform):
	// approver lists hold "slack:U123", "teams:<object id>", "web:alice".
	ID string `json:"id"`
	// Name is a display name, for messages only; never used for authorisation.
	Name string `json:"name,omitempty"`
}

// Label returns the user's name, or the id when no name is known.
func (u User) Label() string {
	if u.Name != "" {
		return u.Name
	}
	return u.ID
}

// Conversation is where a command came from and where replies go.
type Conversation struct {
	// Platform is Slack, Teams or Web.
	Platform string `json:"platform"`
	// ID is the Slack channel id, the Teams conversation id or the console room.
	ID string `json:"id"`
	// Thread is the message replies should be threaded under: a Slack
	// thread_ts, a Teams activity id; empty for the top level.
	Thread string `json:"thread,omitempty"`
	// Ref is adapter-private addressing data that must survive a restart
	// (a Teams conversation reference with its serviceUrl). The core stores it
	// and hands it back unchanged.
	Ref json.RawMessage `json:"ref,omitempty"`
}

// Key returns "platform:id", the conversation's identity for channel
// bindings and allow-lists.
func (c Conversation) Key() string { return c.Platform + ":" + c.ID }

// InThread returns a copy of c whose replies are threaded under the message ref.
func (c Conversation) InThread(ref MessageRef) Conversation {
	c.Thread = ref.ID
	if ref.Conv.Thread != "" {
		c.Thread = ref.Conv.Thread
	}
	return c
}

// MessageRef identifies a message the bot posted, so it can be updated in place.
type MessageRef struct {
	Conv Conversation `json:"conv"`
	// ID is the Slack message ts, the Teams activity id or the console message id.
	ID string `json:"id"`
}

// Command is one thing a person asked for: typed text or a button click.
type Command struct {
	// ID is the platform's id for this delivery (Slack trigger_id, Teams
	// activity id, console click id). Redeliveries carry the same id.
	ID   string
	User User
	Conv Conversation
	// Text is the command without its prefix ("/c2", "c2", a mention):
	// "diagnose contoso --for 4h". For a click it is the button's Command.
	Text string
	// Origin is the message whose button was clicked; nil for typed commands.
	Origin *MessageRef
}

// Severity grades a section of a message.
type Severity int

// Severities, from least to most serious.
const (
	SeverityNone Severity = iota
	SeverityOK
	SeverityInfo
	SeverityWarning
	SeverityBlocker
)

// String returns "ok", "info", "warning", "blocker" or "".
func (s Severity) String() string {
	switch s {
	case SeverityOK:
		return "ok"
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityBlocker:
		return "blocker"
	}
	return ""
}

// ButtonStyle is how a button is drawn.
type ButtonStyle string

// Button styles; the zero value is the platform default.
const (
	StyleDefault ButtonStyle = ""
	StylePrimary ButtonStyle = "primary"
	StyleDanger  ButtonStyle = "danger"
)

// Message is what the bot says. Every string in it is plain text: adapters
// escape it for their markup, so user-supplied text never pings or formats.
type Message struct {
	Title    string    `json:"title,omitempty"`
	Text     string    `json:"text,omitempty"`
	Sections []Section `json:"sections,omitempty"`
	Buttons  []Button  `json:"buttons,omitempty"`
	// Footer is a short closing note (propagation delay, request id).
	Footer string `json:"footer,omitempty"`
	// Key, when set, marks the posted message invisibly so that a Finder
	// can recognise it later (the outbox sets it; nobody reads it).
	Key string `json:"key,omitempty"`
}

// Section is one block of a message: a finding, a setting change, a result.
type Section struct {
	Title    string   `json:"title,omitempty"`
	Severity Severity `json:"severity,omitempty"`
	Text     string   `json:"text,omitempty"`
	Facts    []Fact   `json:"facts,omitempty"`
}

// Fact is a name/value pair shown as a row.
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Button is a clickable action. Its Command is what a click runs, exactly as
// if typed ("approve r-42"), so clicks and typed commands take the same road.
type Button struct {
	Label   string      `json:"label"`
	Command string      `json:"command"`
	Style   ButtonStyle `json:"style,omitempty"`
}

// PlainText renders m as plain text, for logs, notifications and platforms
// without rich layout.
func (m Message) PlainText() string {
	var b strings.Builder
	line := func(s string) {
		if s == "" {
			return
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	line(m.Title)
	line(m.Text)
	for _, s := range m.Sections {
		title := s.Title
		if sev := s.Severity.String(); sev != "" && title != "" {
			title = "[" + sev + "] " + title
		}
		line(title)
		line(s.Text)
		for _, f := range s.Facts {
			line(f.Name + ": " + f.Value)
		}
	}
	for _, btn := range m.Buttons {
		line("[" + btn.Label + "] → " + btn.Command)
	}
	line(m.Footer)
	return strings.TrimRight(b.String(), "\n")
}

// Sender posts and updates messages on one platform. Errors wrapping
// ErrUndeliverable are final; any other error may be retried.
type Sender interface {
	// Platform returns the platform this sender serves (Slack, Teams, Web).
	Platform() string
	// Post sends msg to conv (threaded when conv.Thread is set) and returns
	// a reference to the new message.
	Post(ctx context.Context, conv Conversation, msg Message) (MessageRef, error)
	// Update replaces the message at ref with msg.
	Update(ctx context.Context, ref MessageRef, msg Message) error
}

// ErrCannotLook wraps a Finder's error when the platform will not let it
// look (a scope the app was not granted): the caller posts as if nothing
// had been found, accepting that the post may be a second copy.
var ErrCannotLook = errors.New("cannot look for an earlier copy of the message")

// Finder is implemented by senders that can look up what the bot posted.
// The outbox uses it so that a notice whose delivery was interrupted (a
// crash after the platform accepted the post and before the outbox
// recorded it, or an answer lost on the way back) is not posted twice.
type Finder interface {
	// Find returns the message the bot itself posted in conv (in the
	// thread conv.Thread when set, else at the top of the conversation)
	// marked with key (Message.Key); ok is false when there is none.
	Find(ctx context.Context, conv Conversation, key string) (ref MessageRef, ok bool, err error)
}

// EphemeralSender is implemented by senders that can show a message to one
// user only (Slack ephemeral messages, the console). Where it is missing the
// core posts a normal message instead.
type EphemeralSender interface {
	// PostEphemeral shows msg to user in conv and to nobody else.
	PostEphemeral(ctx context.Context, conv Conversation, user User, msg Message) error
}

// Handler runs commands. Adapters acknowledge their platform first and then
// hand the command to a Dispatcher, which calls Handle on a bounded pool.
type Handler interface {
	// Handle runs cmd to completion, posting its replies through the Sender
	// registered for cmd.Conv.Platform. It never panics on bad input: a
	// command it cannot run gets a reply saying why.
	Handle(ctx context.Context, cmd Command)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, cmd Command)

// Handle calls f(ctx, cmd).
func (f HandlerFunc) Handle(ctx context.Context, cmd Command) { f(ctx, cmd) }
