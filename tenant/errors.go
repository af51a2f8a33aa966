package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// ErrAuthentication is wrapped by every error that comes from signing in to
// the tenant (a wrong secret or certificate, an unknown app or tenant): no
// Graph call could be made. The wrapped text names the sign-in error code but
// never the secret.
var ErrAuthentication = errors.New("cannot sign in to the tenant")

// GraphError is an error answer from Microsoft Graph. Callers branch on
// Status and Code (never on Message) with errors.As or the Is… helpers.
type GraphError struct {
	// Status is the HTTP status code (403, 429, …).
	Status int
	// Code is Graph's error code ("Authorization_RequestDenied",
	// "TooManyRequests", …); empty when the answer carried none.
	Code string
	// Message is Graph's human-readable message.
	Message string
	// RequestID is Graph's request-id, for a support case.
	RequestID string
}

// maxMessage bounds the Graph message quoted in Error.
const maxMessage = 200

// Error is "Code (HTTP 403): message [request-id …]"; it holds nothing
// secret and can be shown in a channel.
func (e *GraphError) Error() string {
	var b strings.Builder
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
		if code == "" {
			code = "error"
		}
	}
	fmt.Fprintf(&b, "%s (HTTP %d)", code, e.Status)
	if msg := strings.TrimSpace(Redact(e.Message)); msg != "" {
		if len(msg) > maxMessage {
			msg = msg[:maxMessage] + "…"
		}
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request-id %s]", e.RequestID)
	}
	return b.String()
}

// UserMessage is what a person in the channel reads: Graph's code, the
// status and the request id, never Graph's own text (an upstream answer is
// logged, not posted).
func (e *GraphError) UserMessage() string {
	var b strings.Builder
	switch {
	case e.Status == http.StatusForbidden:
		b.WriteString("Microsoft Graph refused: c2bot's app lacks a permission, admin consent or licence for this")
	case e.Status == http.StatusUnauthorized:
		b.WriteString("Microsoft Graph did not accept c2bot's sign-in")
	case e.Status == http.StatusTooManyRequests:
		b.WriteString("Microsoft Graph is throttling c2bot; it will try again later")
	case e.Status == http.StatusNotFound:
		b.WriteString("Microsoft Graph did not find the setting or policy")
	case e.Status >= 500:
		b.WriteString("Microsoft Graph is having trouble")
	default:
		b.WriteString("Microsoft Graph refused the request")
	}
	code := e.Code
	if !plainCode.MatchString(code) {
		code = http.StatusText(e.Status) // none, or not a code: not quoted
	}
	fmt.Fprintf(&b, " (%s, HTTP %d", code, e.Status)
	if e.RequestID != "" {
		fmt.Fprintf(&b, ", request-id %s", e.RequestID)
	}
	b.WriteString(").")
	return b.String()
}

// plainCode is what a Graph error code looks like
// ("Authorization_RequestDenied", "Request_ResourceNotFound").
var plainCode = regexp.MustCompile(`^[A-Za-z0-9_.]{1,64}$`)

// AsGraphError returns the GraphError in err's chain, or nil.
func AsGraphError(err error) *GraphError {
	var ge *GraphError
	if errors.As(err, &ge) {
		return ge
	}
	return nil
}

func hasStatus(err error, status int) bool {
	ge := AsGraphError(err)
	return ge != nil && ge.Status == status
}

// IsForbidden reports whether Graph answered 403 (a missing permission,
// admin consent or licence).
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsThrottled reports whether Graph answered 429 (after the client's own
// retries were used up).
func IsThrottled(err error) bool { return hasStatus(err, http.StatusTooManyRequests) }

// IsNotFound reports whether Graph answered 404.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsAuthError reports whether err is a sign-in failure: no token could be
// obtained (ErrAuthentication) or Graph rejected the token (401).
func IsAuthError(err error) bool {
	return errors.Is(err, ErrAuthentication) || hasStatus(err, http.StatusUnauthorized)
}

// errorEnvelope is Graph's error body (concepts/errors.md).
type errorEnvelope struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// maxErrorBody bounds how much of an error answer is kept.
const maxErrorBody = 64 << 10

// errCapture holds the last error answer seen for one logical call. Kiota
// turns error bodies into ODataError, but fails (and loses the status) when
// the body is not JSON (a gateway's HTML 502) or has a field it cannot parse;
// the transport records what it saw so the call still ends in a GraphError.
type errCapture struct {
	mu  sync.Mutex
	err *GraphError
}

type captureKey struct{}

func withCapture(ctx context.Context) (context.Context, *errCapture) {
	c := &errCapture{}
	return context.WithValue(ctx, captureKey{}, c), c
}

func (c *errCapture) get() *GraphError {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// recordError parses an error answer into the request's capture, leaving
// resp.Body readable for kiota.
func recordError(resp *http.Response) {
	c, _ := resp.Request.Context().Value(captureKey{}).(*errCapture)
	if c == nil {
		return
	}
	ge := &GraphError{Status: resp.StatusCode}
	if resp.Body != nil {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if err == nil {
			var env errorEnvelope
			if json.Unmarshal(b, &env) == nil {
				ge.Code = env.Error.Code
				ge.Message = env.Error.Message
				ge.RequestID = env.Error.InnerError.RequestID
			}
		}
	}
	if ge.RequestID == "" {
		ge.RequestID = resp.Header.Get("request-id")
	}
	c.mu.Lock()
	c.err = ge
	c.mu.Unlock()
}

// graphError turns what kiota returned into a *GraphError when the answer
// was an HTTP error; other errors (network, context, sign-in) pass through.
func graphError(err error, c *errCapture) error {
	if err == nil {
		return nil
	}
	if AsGraphError(err) != nil || errors.Is(err, ErrAuthentication) {
		return err
	}
	var odata *odataerrors.ODataError
	if errors.As(err, &odata) {
		ge := &GraphError{Status: odata.ResponseStatusCode}
		if main := odata.GetErrorEscaped(); main != nil {
			ge.Code = deref(main.GetCode())
			ge.Message = deref(main.GetMessage())
			if inner := main.GetInnerError(); inner != nil {
				ge.RequestID = deref(inner.GetRequestId())
			}
		}
		if ge.RequestID == "" && odata.ResponseHeaders != nil {
			if v := odata.ResponseHeaders.Get("request-id"); len(v) > 0 {
				ge.RequestID = v[0]
			}
		}
		if seen := c.get(); seen != nil && seen.Status == ge.Status {
			fillFrom(ge, seen)
		}
		return ge
	}
	if seen := c.get(); seen != nil {
		ge := *seen
		return &ge
	}
	var api *abs.ApiError
	if errors.As(err, &api) && api.ResponseStatusCode >= 400 {
		return &GraphError{Status: api.ResponseStatusCode}
	}
	return err
}

func fillFrom(ge, from *GraphError) {
	if ge.Code == "" {
		ge.Code = from.Code
	}
	if ge.Message == "" {
		ge.Message = from.Message
	}
	if ge.RequestID == "" {
		ge.RequestID = from.RequestID
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
