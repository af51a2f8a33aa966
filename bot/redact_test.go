package bot

import (
	"errors"
	"strings"
	"testing"
)

var errBase = errors.New("base")

// TestRedactError: the text is redacted, the chain is kept.
func TestRedactError(t *testing.T) {
	err := RedactError(errors.Join(errBase, errors.New("invalid_auth: token=xoxb-1-2-secret")), "xoxb-1-2-secret")
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("text %q", err)
	}
	if !errors.Is(err, errBase) {
		t.Fatal("chain lost")
	}
	if RedactError(nil) != nil {
		t.Fatal("nil became an error")
	}
}
