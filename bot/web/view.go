package web

import (
	"time"

	"github.com/c2bot/c2bot/bot"
)

// Entry is one message of the transcript as the page receives it, from
// GET /console/api/messages and in the "message" events of the stream.
type Entry struct {
	// ID is "m-<n>", the console message id (bot.MessageRef.ID).
	ID string `json:"id"`
	// Kind is "bot" (the bot's message), "user" (a typed command) or
	// "action" (a button click).
	Kind string `json:"kind"`
	// Author wrote the message: the bot or a simulated user.
	Author bot.User `json:"author"`
	// To is the only user who sees an ephemeral message; empty otherwise.
	To string `json:"to,omitempty"`
	// Thread is the id of the message this one replies to, if any.
	Thread string `json:"thread,omitempty"`
	// Time is when the message was posted; Updated when it last changed.
	Time    time.Time  `json:"time"`
	Updated *time.Time `json:"updated,omitempty"`
	// Version starts at 1 and grows with every update; the page keeps the
	// highest version it has seen of each message.
	Version int `json:"version"`
	// Failed says why a person's command was not run (the bot was busy).
	Failed string `json:"failed,omitempty"`
	// Plain is the message as plain text (bot.Message.PlainText).
	Plain string `json:"plain"`
	// Message is the message body.
	Message MessageView `json:"message"`
}

// MessageView is bot.Message with severities spelled out.
type MessageView struct {
	Title    string        `json:"title,omitempty"`
	Text     string        `json:"text,omitempty"`
	Sections []SectionView `json:"sections,omitempty"`
	Buttons  []bot.Button  `json:"buttons,omitempty"`
	Footer   string        `json:"footer,omitempty"`
}

// SectionView is bot.Section with its severity as "blocker", "warning",
// "info", "ok" or "".
type SectionView struct {
	Title    string     `json:"title,omitempty"`
	Severity string     `json:"severity,omitempty"`
	Text     string     `json:"text,omitempty"`
	Facts    []bot.Fact `json:"facts,omitempty"`
}

// view returns e as the page sees it.
func (e *entry) view() Entry {
	v := Entry{
		ID:      e.id,
		Kind:    e.kind,
		Author:  e.author,
		To:      e.to,
		Thread:  e.thread,
		Time:    e.at,
		Version: e.version,
		Failed:  e.failed,
		Plain:   e.msg.PlainText(),
		Message: MessageView{
			Title:   e.msg.Title,
			Text:    e.msg.Text,
			Buttons: append([]bot.Button(nil), e.msg.Buttons...),
			Footer:  e.msg.Footer,
		},
	}
	if !e.updated.IsZero() {
		u := e.updated
		v.Updated = &u
	}
	for _, s := range e.msg.Sections {
		v.Message.Sections = append(v.Message.Sections, SectionView{
			Title:    s.Title,
			Severity: s.Severity.String(),
			Text:     s.Text,
			Facts:    append([]bot.Fact(nil), s.Facts...),
		})
	}
	return v
}
