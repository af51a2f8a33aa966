package handlers

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{`fix --for 8h`, []string{"fix", "--for", "8h"}, false},
		{`fix --reason "nightly backup run"`, []string{"fix", "--reason", "nightly backup run"}, false},
		{`fix --reason “smart quotes here”`, []string{"fix", "--reason", "smart quotes here"}, false},
		{`fix --reason 'single'`, []string{"fix", "--reason", "single"}, false},
		{`fix --reason "open`, nil, true},
		{"  diagnose\tcontoso  ", []string{"diagnose", "contoso"}, false},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if (err != nil) != tt.err || (!tt.err && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("splitWords(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseArgs(t *testing.T) {
	a, err := parseArgs(`FIX contoso —for=4h --reason "x y"`)
	if err != nil {
		t.Fatal(err)
	}
	if a.verb != "fix" || !reflect.DeepEqual(a.pos, []string{"contoso"}) || a.flags["for"] != "4h" || a.flags["reason"] != "x y" {
		t.Fatalf("parsed %+v", a)
	}
	for _, bad := range []string{"fix --for", "fix --for 1h --for 2h"} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("parseArgs(%q) accepted", bad)
		}
	}
	if err := a.only("for"); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("only: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"90m": 90 * time.Minute, "8h": 8 * time.Hour, "2d": 48 * time.Hour, "1.5d": 36 * time.Hour, "1h30m": 90 * time.Minute}
	for in, want := range good {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "soon", "-1h", "0", "0s", "999d", "d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{8 * time.Hour: "8h", 90 * time.Minute: "1h30m", 72 * time.Hour: "3d", 45 * time.Second: "45s", 0: "0s"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDuplicateVerbRejected(t *testing.T) {
	table := append(commandTable(), command{verb: "fix"})
	if _, err := buildCommands(table); err == nil || !strings.Contains(err.Error(), `"fix" registered twice`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := buildCommands(commandTable()); err != nil {
		t.Fatal(err)
	}
}

// A dash inside a value is the person's text; only a leading one stands
// for "--" (chat clients turn "--" into an em dash).
func TestDashInsideAValueIsKept(t *testing.T) {
	a, err := parseArgs(`fix --reason="backup — finance" —for 2h`)
	if err != nil {
		t.Fatal(err)
	}
	if a.flags["reason"] != "backup — finance" || a.flags["for"] != "2h" {
		t.Fatalf("flags = %v", a.flags)
	}
}

// An empty quoted command word is refused, not read as "help".
func TestEmptyCommandWordRefused(t *testing.T) {
	if _, err := parseArgs(`'' approve r-1`); err == nil {
		t.Fatal("an empty command word was accepted")
	}
}
