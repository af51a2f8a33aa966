package main

import (
	"os"
	"strings"
	"testing"
)

// Every setting is documented in the README's configuration section.
func TestEverySettingIsInTheReadme(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	for _, s := range c.settings() {
		if !strings.Contains(string(raw), s.env()) {
			t.Errorf("%s is not documented in README.md", s.env())
		}
	}
}
