package teams

import (
	"strings"

	"github.com/c2bot/c2bot/bot"
)

// Adaptive Card constants.
const (
	cardContentType = "application/vnd.microsoft.card.adaptive"
	cardSchema      = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardVersion     = "1.5"
	// actionVerb is the Action.Execute verb of every c2 button.
	actionVerb = "c2"
)

// card is an Adaptive Card; elements are maps so the JSON stays exactly
// what the card schema names, in a stable (sorted) key order.
type card struct {
	Type    string           `json:"type"`
	Schema  string           `json:"$schema"`
	Version string           `json:"version"`
	Body    []map[string]any `json:"body"`
	Actions []map[string]any `json:"actions,omitempty"`
	MSTeams map[string]any   `json:"msteams,omitempty"`
}

// severityLook is how a section of each severity is drawn.
var severityLook = map[bot.Severity]struct{ emoji, color, style string }{
	bot.SeverityOK:      {"✅", "Good", "good"},
	bot.SeverityInfo:    {"ℹ️", "Accent", "accent"},
	bot.SeverityWarning: {"⚠️", "Warning", "warning"},
	bot.SeverityBlocker: {"🛑", "Attention", "attention"},
}

// renderCard turns a message into an Adaptive Card 1.5. Buttons become
// Action.Execute (verb "c2", data {"c2cmd": command}) with an Action.Submit
// fallback carrying the same data, so clicks arrive either as an
// adaptiveCard/action invoke or as a message with a value.
func renderCard(m bot.Message) card {
	c := card{
		Type: "AdaptiveCard", Schema: cardSchema, Version: cardVersion,
		Body:    []map[string]any{},
		MSTeams: map[string]any{"width": "Full"},
	}
	if m.Title != "" {
		c.Body = append(c.Body, textBlock(m.Title, map[string]any{"size": "Large", "weight": "Bolder"}))
	}
	if m.Text != "" {
		c.Body = append(c.Body, textBlock(m.Text, nil))
	}
	for _, s := range m.Sections {
		c.Body = append(c.Body, section(s))
	}
	if m.Footer != "" {
		c.Body = append(c.Body, textBlock(m.Footer, map[string]any{"isSubtle": true, "size": "Small", "spacing": "Medium"}))
	}
	if len(c.Body) == 0 {
		c.Body = append(c.Body, textBlock(" ", nil))
	}
	for _, b := range m.Buttons {
		c.Actions = append(c.Actions, action(b))
	}
	return c
}

func section(s bot.Section) map[string]any {
	look, known := severityLook[s.Severity]
	items := []map[string]any{}
	if s.Title != "" {
		title := escapeMarkdown(s.Title)
		extra := map[string]any{"weight": "Bolder"}
		if known {
			title = look.emoji + " " + title
			extra["color"] = look.color
		}
		items = append(items, textBlockRaw(title, extra))
	}
	if s.Text != "" {
		items = append(items, textBlock(s.Text, map[string]any{"spacing": "Small"}))
	}
	if len(s.Facts) > 0 {
		facts := make([]map[string]any, 0, len(s.Facts))
		for _, f := range s.Facts {
			facts = append(facts, map[string]any{"title": escapeMarkdown(f.Name), "value": escapeMarkdown(f.Value)})
		}
		items = append(items, map[string]any{"type": "FactSet", "facts": facts, "spacing": "Small"})
	}
	if len(items) == 0 {
		items = append(items, textBlock(" ", nil))
	}
	c := map[string]any{"type": "Container", "items": items, "spacing": "Medium", "separator": true}
	if known {
		c["style"] = look.style
	}
	return c
}

func action(b bot.Button) map[string]any {
	data := map[string]any{cmdKey: b.Command}
	title := b.Label
	style := ""
	switch b.Style {
	case bot.StylePrimary:
		style = "positive"
	case bot.StyleDanger:
		style = "destructive"
	}
	fallback := map[string]any{"type": "Action.Submit", "title": title, "data": data}
	a := map[string]any{"type": "Action.Execute", "title": title, "verb": actionVerb, "data": data, "fallback": fallback}
	if style != "" {
		a["style"] = style
		fallback["style"] = style
	}
	return a
}

// textBlock is a wrapping TextBlock showing plain text s literally.
func textBlock(s string, extra map[string]any) map[string]any {
	return textBlockRaw(escapeMarkdown(s), extra)
}

func textBlockRaw(md string, extra map[string]any) map[string]any {
	tb := map[string]any{"type": "TextBlock", "text": md, "wrap": true}
	for k, v := range extra {
		tb[k] = v
	}
	return tb
}

// markdownEscaper backslash-escapes the characters that start inline
// formatting in the Adaptive Card markdown subset (emphasis, links, code).
var markdownEscaper = strings.NewReplacer(
	`\`, `\\`, `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, "`", "\\`", `~`, `\~`,
)

// escapeMarkdown makes plain text show literally in a TextBlock: inline
// markup characters are escaped, a line that would start a list, a heading
// or a quote gets its marker escaped, and single line breaks are doubled
// (markdown joins single ones). TextBlocks never render HTML, and <at> only
// pings with a matching msteams entity, which cards here never carry.
func escapeMarkdown(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		l = markdownEscaper.Replace(l)
		trimmed := strings.TrimLeft(l, " ")
		indent := l[:len(l)-len(trimmed)]
		switch {
		case strings.HasPrefix(trimmed, "- "), strings.HasPrefix(trimmed, "+ "),
			strings.HasPrefix(trimmed, "#"), strings.HasPrefix(trimmed, ">"):
			l = indent + `\` + trimmed
		default:
			if i := leadingDigits(trimmed); i > 0 && i < len(trimmed) && (trimmed[i] == '.' || trimmed[i] == ')') {
				l = indent + trimmed[:i] + `\` + trimmed[i:]
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n\n")
}

func leadingDigits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
