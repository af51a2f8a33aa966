package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogHandlerAddsRequestAttributesOnce(t *testing.T) {
	var buf bytes.Buffer
	root := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil)))
	ctx := withLog(context.Background(), "platform", "slack", "request", "r-0")
	ctx = withLog(ctx, "request", "r-1", "tenant", "contoso")
	root.InfoContext(ctx, "from the core")
	root.With("tenant", "contoso").InfoContext(ctx, "from a tenant client", "kind", "security_defaults")
	root.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines = %d:\n%s", len(lines), buf.String())
	}
	for i, want := range []map[string]string{
		{"request": "r-1", "tenant": "contoso", "platform": "slack"},
		{"request": "r-1", "tenant": "contoso", "platform": "slack", "kind": "security_defaults"},
		{},
	} {
		var obj map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &obj); err != nil {
			t.Fatalf("line %d is not one JSON object: %v\n%s", i, err, lines[i])
		}
		for k, v := range want {
			if obj[k] != v {
				t.Errorf("line %d: %s = %v, want %q", i, k, obj[k], v)
			}
		}
		if i == 2 && (obj["request"] != nil || obj["tenant"] != nil) {
			t.Errorf("a line without a request context got request attributes: %s", lines[i])
		}
		if n := strings.Count(lines[i], `"tenant"`); n > 1 {
			t.Errorf("line %d repeats the tenant key %d times: %s", i, n, lines[i])
		}
	}
}
