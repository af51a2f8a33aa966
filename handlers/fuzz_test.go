package handlers

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
)

// commandSeeds are commands as people type them (the README's examples and
// the slash-command text of ../shared/fixtures/slack).
var commandSeeds = []string{
	"diagnose", "diagnose contoso --account svc-backup@contoso.com", "fix", "fix contoso --for 2h --reason \"tool upgrade\"",
	"fix --for=90m --reason “the vendor's fix”", "fix —for 2d", "approve r-1", "deny r-12", "revert r-3", "extend r-3 2h --reason 'job overran'",
	"status", "signins --since 24h", "audit", "help", "94070", "cancel r-1", "fix --reason \"unclosed", "--for", "a --b --b",
	strings.Repeat("x ", 30), "fix --reason " + strings.Repeat("é", 501),
}

// sharedSlashTexts adds the text= of the shared slash-command fixtures when
// ../shared/fixtures is beside the repository (it is in CI); without it the
// built-in seeds are enough.
func sharedSlashTexts(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "fixtures", "slack", "slash_command_form_body_*.txt"))
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(raw), "&") {
			if v, ok := strings.CutPrefix(kv, "text="); ok {
				f.Add(v)
			}
		}
	}
}

// quoteWord renders w so that splitWords reads it back as one word, or
// reports false when w holds a quote character (no quoting then survives).
func quoteWord(w string) (string, bool) {
	if strings.ContainsAny(w, "\"'“”‘’„") {
		return "", false
	}
	return `"` + w + `"`, true
}

// FuzzParseArgs: parsing never panics, every result is bounded-checked
// without panicking, and a parsed command rendered back (each word quoted)
// parses to the same verb, words and flags.
func FuzzParseArgs(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add(s)
	}
	sharedSlashTexts(f)
	f.Fuzz(func(t *testing.T, text string) {
		a, err := parseArgs(text)
		if err != nil {
			return
		}
		_ = a.checkBounds()
		_ = checkCommandLen(text)
		if a.verb == "" {
			if len(a.pos) != 0 || len(a.flags) != 0 {
				t.Fatalf("no verb but words %q flags %v", a.pos, a.flags)
			}
			return
		}
		if a.verb != strings.ToLower(a.verb) {
			t.Fatalf("verb %q not lower case", a.verb)
		}
		// Render: verb, positional words, then --name=value flags.
		parts := []string{}
		v, ok := quoteWord(a.verb)
		if !ok || strings.HasPrefix(a.verb, "--") {
			return
		}
		parts = append(parts, v)
		for _, w := range a.pos {
			q, ok := quoteWord(w)
			if !ok || strings.HasPrefix(strings.NewReplacer("—", "--", "–", "--").Replace(w), "--") {
				return // a word that reads as a flag once quotes are gone
			}
			parts = append(parts, q)
		}
		for name, val := range a.flags {
			if strings.ContainsAny(name, "=") || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
				return
			}
			q, ok := quoteWord("--" + name + "=" + val)
			if !ok {
				return
			}
			parts = append(parts, q)
		}
		b, err := parseArgs(strings.Join(parts, " "))
		if err != nil {
			t.Fatalf("rendered %q does not parse: %v", strings.Join(parts, " "), err)
		}
		if b.verb != a.verb || !reflect.DeepEqual(b.pos, a.pos) || !reflect.DeepEqual(b.flags, a.flags) {
			t.Fatalf("round trip of %q via %q: %+v, want %+v", text, strings.Join(parts, " "), b, a)
		}
	})
}

// FuzzParseDuration: a duration that parses is positive, and the compact
// form people read (humanDuration) parses back to within a minute of it.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90m", "8h", "2d", "1h30m", "0.5d", "45s", "-1h", "0", "365d", "366d", "1e3h", "1.5h", "10ms", "70000000s", "8761h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v, not positive", s, d)
		}
		if d < time.Second {
			return // shown as "0s"
		}
		h := humanDuration(d)
		back, err := ParseDuration(h)
		if err != nil {
			t.Fatalf("humanDuration(%v) = %q does not parse: %v", d, h, err)
		}
		if diff := back - d; diff > time.Minute || diff < -time.Minute {
			t.Fatalf("%q → %v → %q → %v", s, d, h, back)
		}
	})
}

// TestParseDurationReadsHumanDuration: the fuzzer found that a window of a
// day or more, shown in a card as "1d2h24m", could not be typed back; and
// that "70000000s" (810 days) was accepted while "810d" was not.
func TestParseDurationReadsHumanDuration(t *testing.T) {
	good := map[string]time.Duration{"1d2h24m": 26*time.Hour + 24*time.Minute, "1.1d": 26*time.Hour + 24*time.Minute, "2d12h": 60 * time.Hour, "3d": 72 * time.Hour}
	for in, want := range good {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got, err := ParseDuration(humanDuration(want)); err != nil || got != want {
			t.Errorf("ParseDuration(humanDuration(%v) = %q) = %v, %v", want, humanDuration(want), got, err)
		}
	}
	for _, in := range []string{"1d-2h", "-1d", "+1d", "1d2", "nand", "infd", "1d2x", "d2h", "366d", "365d1h", "8761h", "70000000s"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, accepted", in, d)
		}
	}
}
