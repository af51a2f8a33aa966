package slack

import (
	"os"
	"strings"
	"testing"
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
