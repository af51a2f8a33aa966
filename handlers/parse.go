package handlers

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds on what a person may type. Every user-supplied field has one, so
// an oversized command gets a clear reply and is never stored or sent on.
const (
	// maxCommandLen bounds the whole command text, in characters.
	maxCommandLen = 2000
	// maxWords bounds how many words a command has.
	maxWords = 24
	// maxWordLen bounds a positional word: a tenant name, a request id, a
	// duration.
	maxWordLen = 64
	// maxReasonLen bounds --reason.
	maxReasonLen = 500
	// maxAccountLen bounds --account, a user principal name: a sanity bound
	// well above the user principal names tenants use.
	maxAccountLen = 256
	// maxDurationLen bounds a duration as typed ("90m", "1h30m", "2d").
	maxDurationLen = 16
)

// flagLimits bounds each flag's value, in characters; other flags get maxWordLen.
var flagLimits = map[string]int{
	"reason":  maxReasonLen,
	"account": maxAccountLen,
	"version": 16,
	"product": 16,
	"for":     32,
	"since":   32,
}

// checkCommandLen refuses a command text longer than maxCommandLen.
func checkCommandLen(text string) error {
	if n := utf8.RuneCountInString(text); n > maxCommandLen {
		return fmt.Errorf("the command is too long (%d characters; %d at most)", n, maxCommandLen)
	}
	return nil
}

// checkBounds refuses a command whose words or flag values are too long or
// too many, naming the field.
func (a args) checkBounds() error {
	if n := len(a.pos) + len(a.flags); n > maxWords {
		return fmt.Errorf("the command has too many words (%d; %d at most)", n, maxWords)
	}
	for _, w := range a.pos {
		if n := utf8.RuneCountInString(w); n > maxWordLen {
			return fmt.Errorf("%.20q… is too long (%d characters; %d at most)", w, n, maxWordLen)
		}
	}
	for name, v := range a.flags {
		limit, ok := flagLimits[name]
		if !ok {
			limit = maxWordLen
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(v)); n > limit {
			if name == "reason" {
				return fmt.Errorf("the reason is too long (%d characters; %d at most)", n, limit)
			}
			return fmt.Errorf("--%s is too long (%d characters; %d at most)", name, n, limit)
		}
	}
	if utf8.RuneCountInString(a.verb) > maxWordLen {
		return fmt.Errorf("that is not a command (%d characters)", utf8.RuneCountInString(a.verb))
	}
	return nil
}

// args is a parsed command line: positional words and --flags.
type args struct {
	verb  string
	pos   []string
	flags map[string]string
}

// splitWords splits a command line into words, honouring "double", 'single'
// and the typographic quotes chat clients substitute (“ ” ‘ ’).
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	closer := map[rune]rune{'"': '"', '\'': '\'', '“': '”', '”': '”', '‘': '’', '’': '’', '„': '“'}
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote || (quote == '”' && r == '“') || (quote == '"' && (r == '”' || r == '“')) {
				quote = 0
				continue
			}
			cur.WriteRune(r)
		case closer[r] != 0:
			quote = closer[r]
			in = true
		case unicode.IsSpace(r):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("a quote is not closed")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseArgs parses "verb pos… --flag value --flag=value". Flags that take no
// value are listed in boolFlags.
func parseArgs(text string, boolFlags ...string) (args, error) {
	words, err := splitWords(text)
	if err != nil {
		return args{}, err
	}
	a := args{flags: map[string]string{}}
	if len(words) == 0 {
		return a, nil
	}
	if words[0] == "" {
		return args{}, errors.New("the command word is empty")
	}
	a.verb = strings.ToLower(words[0])
	isBool := func(name string) bool {
		for _, b := range boolFlags {
			if b == name {
				return true
			}
		}
		return false
	}
	for i := 1; i < len(words); i++ {
		w := words[i]
		// Chat clients turn a leading "--" into an em or en dash; a dash
		// anywhere else is the person's text ("--reason=backup — finance").
		for _, dash := range []string{"—", "–"} {
			if rest, ok := strings.CutPrefix(w, dash); ok {
				w = "--" + rest
				break
			}
		}
		if !strings.HasPrefix(w, "--") || len(w) == 2 {
			a.pos = append(a.pos, words[i])
			continue
		}
		name, val, hasVal := strings.Cut(w[2:], "=")
		name = strings.ToLower(name)
		if _, dup := a.flags[name]; dup {
			return args{}, fmt.Errorf("--%s is given twice", name)
		}
		switch {
		case hasVal:
		case isBool(name):
			val = "true"
		case i+1 < len(words):
			i++
			val = words[i]
		default:
			return args{}, fmt.Errorf("--%s needs a value", name)
		}
		a.flags[name] = val
	}
	return a, nil
}

// only reports an error naming the first flag not in allowed.
func (a args) only(allowed ...string) error {
	for name := range a.flags {
		ok := false
		for _, x := range allowed {
			if x == name {
				ok = true
			}
		}
		if !ok {
			if len(allowed) == 0 {
				return fmt.Errorf("“%s” takes no options (got --%s)", a.verb, name)
			}
			return fmt.Errorf("unknown option --%s for “%s” (accepted: --%s)", name, a.verb, strings.Join(allowed, ", --"))
		}
	}
	return nil
}

// ParseDuration parses a Go duration ("90m", "8h"), a number of days
// ("2d"), or days followed by a Go duration ("1d2h30m", as humanDuration
// writes it, so a window shown in a card can be typed back). It rejects
// zero and negative values.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if n := utf8.RuneCountInString(s); n > maxDurationLen {
		return 0, fmt.Errorf("a duration of %d characters is too long (%d at most; try 90m, 8h or 2d)", n, maxDurationLen)
	}
	var d time.Duration
	// No Go duration unit has a "d": one marks days.
	if days, rest, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n != n || n > 365 || n < 0 || strings.ContainsAny(days, "+-") {
			return 0, fmt.Errorf("%q is not a duration (try 90m, 8h or 2d)", s)
		}
		d = time.Duration(n * float64(24*time.Hour))
		if rest != "" {
			r, err := time.ParseDuration(rest)
			if err != nil || r < 0 || strings.HasPrefix(rest, "+") {
				return 0, fmt.Errorf("%q is not a duration (try 90m, 8h or 2d)", s)
			}
			d += r
		}
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (try 90m, 8h or 2d)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be longer than zero", s)
	}
	// The same bound whichever unit it was typed in, so that whatever is
	// accepted is shown as something that can be typed back.
	if d > maxParsedDuration {
		return 0, fmt.Errorf("%q is longer than a year", s)
	}
	return d, nil
}

// maxParsedDuration is the longest duration ParseDuration accepts: 365
// days, as typed with a day unit.
const maxParsedDuration = 365 * 24 * time.Hour

// humanDuration renders d compactly: "8h", "1h30m", "2m", "45s".
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 && days == 0 && h == 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}
