package slack

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/c2bot/c2bot/bot"
	"github.com/slack-go/slack"
)

// Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxBlocks        = 50
	maxHeaderChars   = 150
	maxSectionChars  = 3000
	maxFieldChars    = 2000
	maxFields        = 10
	maxButtonLabel   = 75
	maxButtonValue   = 2000
	maxActions       = 25
	maxContextChars  = 2000
	maxFallbackChars = 3000
)

// actionPrefix starts the action_id of every button c2bot draws
// ("c2:0", "c2:1", …); action ids must be unique within a message.
const actionPrefix = "c2:"

var severityEmoji = map[bot.Severity]string{
	bot.SeverityBlocker: ":red_circle:",
	bot.SeverityWarning: ":warning:",
	bot.SeverityInfo:    ":information_source:",
	bot.SeverityOK:      ":white_check_mark:",
}

// render turns msg into Block Kit blocks and the fallback text Slack shows
// in notifications. User-supplied strings end up in plain_text objects
// (never parsed for mentions or formatting) or, where mrkdwn is needed for
// bold names, escaped and marked verbatim; a string that contains mrkdwn
// formatting characters is drawn as plain_text instead.
func render(msg bot.Message) ([]slack.Block, string) {
	var blocks []slack.Block
	if msg.Title != "" {
		blocks = append(blocks, slack.NewHeaderBlock(plain(truncate(msg.Title, maxHeaderChars))))
	}
	if msg.Text != "" {
		blocks = append(blocks, slack.NewSectionBlock(plain(truncate(msg.Text, maxSectionChars)), nil, nil))
	}
	for i, s := range msg.Sections {
		if i > 0 || msg.Title != "" || msg.Text != "" {
			blocks = append(blocks, slack.NewDividerBlock())
		}
		blocks = append(blocks, renderSection(s)...)
	}
	if msg.Footer != "" {
		blocks = append(blocks, slack.NewContextBlock("", plain(truncate(msg.Footer, maxContextChars))))
	}
	if act := renderButtons(msg.Buttons); act != nil {
		blocks = append(blocks, act)
	}
	blocks = capBlocks(blocks)
	if msg.Key != "" && len(blocks) > 0 {
		setBlockID(blocks[0], keyBlockID(msg.Key))
	}
	return blocks, truncate(msg.PlainText(), maxFallbackChars)
}

func renderSection(s bot.Section) []slack.Block {
	var blocks []slack.Block
	emoji := severityEmoji[s.Severity]
	switch {
	case s.Title != "":
		blocks = append(blocks, slack.NewSectionBlock(heading(emoji, s.Title, s.Severity.String()), nil, nil))
	case emoji != "":
		blocks = append(blocks, slack.NewSectionBlock(plainEmoji(emoji+" "+s.Severity.String()), nil, nil))
	}
	if s.Text != "" {
		blocks = append(blocks, slack.NewSectionBlock(plain(truncate(s.Text, maxSectionChars)), nil, nil))
	}
	// Each fact is a row of two fields, name and value, so a section holds
	// at most maxFields/2 facts.
	var fields []*slack.TextBlockObject
	flush := func() {
		if len(fields) > 0 {
			blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
			fields = nil
		}
	}
	for _, f := range s.Facts {
		fields = append(fields, boldOrPlain(truncate(f.Name, maxFieldChars-2)), plain(truncate(valueOrDash(f.Value), maxFieldChars)))
		if len(fields) == maxFields {
			flush()
		}
	}
	flush()
	return blocks
}

func renderButtons(buttons []bot.Button) slack.Block {
	var elems []slack.BlockElement
	for i, b := range buttons {
		if b.Command == "" || len(b.Command) > maxButtonValue || len(elems) == maxActions {
			continue // a value Slack would refuse; the command can still be typed
		}
		btn := slack.NewButtonBlockElement(actionPrefix+strconv.Itoa(i), b.Command, plainEmoji(truncate(b.Label, maxButtonLabel)))
		switch b.Style {
		case bot.StylePrimary:
			btn = btn.WithStyle(slack.StylePrimary)
		case bot.StyleDanger:
			btn = btn.WithStyle(slack.StyleDanger)
		}
		elems = append(elems, btn)
	}
	if len(elems) == 0 {
		return nil
	}
	return slack.NewActionBlock("c2_actions", elems...)
}

// capBlocks keeps a message within Slack's block limit, keeping the buttons.
func capBlocks(blocks []slack.Block) []slack.Block {
	if len(blocks) <= maxBlocks {
		return blocks
	}
	last := blocks[len(blocks)-1]
	_, isActions := last.(*slack.ActionBlock)
	keep := maxBlocks - 1
	if isActions {
		keep--
	}
	out := append([]slack.Block{}, blocks[:keep]...)
	out = append(out, slack.NewContextBlock("", plain("… more in the full report (type `status`)")))
	if isActions {
		out = append(out, last)
	}
	return out
}

// heading draws "emoji *title* (severity)" in mrkdwn when the title is
// safe to bold, otherwise the same line as plain_text. The severity word
// is there for screen readers and colour-blind readers.
func heading(emoji, title, severity string) *slack.TextBlockObject {
	title = truncate(title, maxSectionChars-40)
	prefix, suffix := "", ""
	if emoji != "" {
		prefix = emoji + " "
	}
	if severity != "" {
		suffix = " (" + severity + ")"
	}
	if hasMarkup(title) {
		return plainEmoji(prefix + title + suffix)
	}
	return mrkdwn(prefix + "*" + escape(title) + "*" + suffix)
}

// boldOrPlain draws s bold in mrkdwn, or as plain_text when it contains
// characters mrkdwn would treat as formatting.
func boldOrPlain(s string) *slack.TextBlockObject {
	if hasMarkup(s) || s == "" {
		return plain(s)
	}
	return mrkdwn("*" + escape(s) + "*")
}

func valueOrDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

// plain is a plain_text object shown exactly as written: no emoji codes,
// no mentions, no formatting.
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// plainEmoji is a plain_text object in which :emoji: codes are drawn.
func plainEmoji(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// mrkdwn is a mrkdwn object with verbatim set, so Slack does not turn bare
// names, channels or URLs into links or mentions.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

// escape makes s safe inside mrkdwn text: &, < and > are the only
// characters Slack asks apps to escape, and with them escaped "<!channel>"
// or "<@U123>" can no longer ping anybody.
func escape(s string) string {
	return mrkdwnEscaper.Replace(s)
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// unescape reverses escape for text Slack sends us (message text is
// delivered with &, < and > escaped).
func unescape(s string) string {
	return mrkdwnUnescaper.Replace(s)
}

var mrkdwnUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// hasMarkup reports whether s holds a character mrkdwn may read as
// formatting (bold, italic, strike, code). Mentions, links and quotes
// need < or >, which escape neutralises.
func hasMarkup(s string) bool {
	return strings.ContainsAny(s, "*_~`")
}

// truncate shortens s to at most n runes, ending with an ellipsis when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
