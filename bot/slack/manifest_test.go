package slack

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/bot/slack/slacktest"
	"gopkg.in/yaml.v3"
)

// TestManifestsMatchHandler keeps the Slack app manifests in this package in
// step with the paths Handler serves and the scopes the adapter needs.
func TestManifestsMatchHandler(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Skipf("manifests not available: %v", err)
		}
		return string(b)
	}
	httpM, sockM := read("manifest-http.yaml"), read("manifest-socket.yaml")
	for _, p := range []string{PathCommands, PathInteractions, PathEvents} {
		if !strings.Contains(httpM, "https://YOUR-HOST"+p) {
			t.Errorf("manifest-http.yaml lacks %s", p)
		}
		if strings.Contains(sockM, p) {
			t.Errorf("manifest-socket.yaml has request URL %s", p)
		}
	}
	for _, m := range []string{httpM, sockM} {
		for _, want := range []string{"command: /c2", "usage_hint:", "- commands", "- chat:write", "- app_mentions:read", "- app_mention", "is_enabled: true"} {
			if !strings.Contains(m, want) {
				t.Errorf("manifest lacks %q", want)
			}
		}
		if strings.Contains(m, "chat:write.public") {
			t.Error("manifest asks for chat:write.public")
		}
	}
	if !strings.Contains(sockM, "socket_mode_enabled: true") || !strings.Contains(httpM, "socket_mode_enabled: false") {
		t.Error("socket_mode_enabled is wrong")
	}
}

// TestManifestScopesAreTheFakesScopes: the fake Slack's token has exactly
// the bot scopes the manifests request, so the tests run with what a real
// install grants, and nothing more is asked for than the code uses.
func TestManifestScopesAreTheFakesScopes(t *testing.T) {
	for _, name := range []string{"manifest-http.yaml", "manifest-socket.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			OAuth struct {
				Scopes struct {
					Bot []string `yaml:"bot"`
				} `yaml:"scopes"`
			} `yaml:"oauth_config"`
		}
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		got, want := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot)), slices.Sorted(slices.Values(slacktest.ManifestScopes))
		if !slices.Equal(got, want) {
			t.Errorf("%s bot scopes %v; the fake grants %v", name, got, want)
		}
	}
}
