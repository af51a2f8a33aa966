package tenant

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
	msgraphgocore "github.com/microsoftgraph/msgraph-sdk-go-core"
)

// Retry timing. Conditional Access endpoints allow one request per second per
// tenant and send no Retry-After, so backoff starts at a second.
const (
	defaultMaxRetries = 4
	backoffBase       = time.Second
	backoffCap        = 30 * time.Second
	// maxRetryAfter caps a server-requested wait.
	maxRetryAfter = 2 * time.Minute
	// maxRequestBody bounds a request body buffered for re-sending.
	maxRequestBody = 4 << 20
)

// graphLibraryVersion is reported in the SdkVersion header, as the SDK's own
// client does.
const graphLibraryVersion = "1.89.0"

// retryHandler is the outermost Graph middleware: it re-sends 429, 502, 503
// and 504 answers, honouring Retry-After (seconds, fractional seconds or an
// HTTP date) or else backing off exponentially with jitter. Each attempt is a
// fresh clone of the request with a fresh body reader. It also records the
// final error answer for GraphError (see errCapture).
type retryHandler struct {
	maxRetries int
	// attemptTimeout bounds one attempt, answer body included; zero means none.
	attemptTimeout time.Duration
	now            func() time.Time
	log            *slog.Logger
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// jitter returns a value in [0, n); tests replace it.
	jitter func(n int64) int64
	// metrics counts 429 answers.
	metrics Metrics
}

func newRetryHandler(maxRetries int, attemptTimeout time.Duration, now func() time.Time, log *slog.Logger) *retryHandler {
	return &retryHandler{
		metrics:        nopMetrics{},
		maxRetries:     maxRetries,
		attemptTimeout: attemptTimeout,
		now:            now,
		log:            log,
		sleep:          sleepCtx,
		jitter:         rand.Int64N,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Intercept implements khttp.Middleware.
func (h *retryHandler) Intercept(p khttp.Pipeline, index int, req *http.Request) (*http.Response, error) {
	if err := bufferBody(req); err != nil {
		return nil, err
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if h.attemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, h.attemptTimeout)
		}
		try := req.Clone(actx)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				cancel()
				return nil, fmt.Errorf("rewind request body: %w", err)
			}
			try.Body = body
		}
		resp, err := p.Next(try, index)
		if err != nil {
			cancel()
			return nil, err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			h.metrics.GraphThrottled(opFrom(ctx))
		}
		if !retryable(resp.StatusCode) || attempt >= h.maxRetries {
			if resp.Body == nil {
				resp.Body = http.NoBody
			}
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			if resp.StatusCode >= 400 {
				recordError(resp)
			}
			return resp, nil
		}
		delay, fromHeader := h.retryAfter(resp.Header.Get("Retry-After"))
		if !fromHeader {
			delay = h.backoff(attempt)
		}
		drain(resp)
		cancel()
		h.log.DebugContext(ctx, "graph request retried",
			"method", req.Method, "path", req.URL.Path, "status", resp.StatusCode,
			"attempt", attempt+1, "delay", delay, "retry_after", fromHeader)
		if err := h.sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// cancelOnClose ends an attempt's context once its answer has been read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// bufferBody makes req re-sendable: kiota sets Body without GetBody.
func bufferBody(req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
	_ = req.Body.Close()
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	if len(b) > maxRequestBody {
		return fmt.Errorf("request body larger than %d bytes", maxRequestBody)
	}
	req.ContentLength = int64(len(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	req.Body, _ = req.GetBody()
	return nil
}

func drain(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
}

// retryAfter parses a Retry-After value: seconds ("2", "2.128") or an HTTP
// date. ok is false when there is no usable value.
func (h *retryHandler) retryAfter(v string) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs != secs { // negative or NaN
			return 0, false
		}
		if secs > maxRetryAfter.Seconds() {
			return maxRetryAfter, true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(h.now())
		if d < 0 {
			d = 0
		}
		return min(d, maxRetryAfter), true
	}
	return 0, false
}

// backoff is base·2^attempt capped, plus up to half of that again as jitter.
func (h *retryHandler) backoff(attempt int) time.Duration {
	d := backoffCap
	if attempt < 16 {
		d = min(backoffBase<<attempt, backoffCap)
	}
	return d + time.Duration(h.jitter(int64(d/2)+1))
}

// newGraphHTTPClient builds the client kiota sends Graph requests with: an
// explicit, fixed middleware order on top of the configured transport. No
// compression handler (a retried PATCH must go out exactly as the first) and
// no kiota retry handler (ours reads Retry-After properly and rewinds bodies).
func newGraphHTTPClient(base *http.Client, retry *retryHandler) *http.Client {
	parent := base.Transport
	if parent == nil {
		parent = http.DefaultTransport
	}
	opts := msgraphgocore.GraphClientOptions{GraphServiceLibraryVersion: graphLibraryVersion}
	middlewares := []khttp.Middleware{
		retry,
		khttp.NewRedirectHandler(),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		msgraphgocore.NewGraphTelemetryHandler(&opts),
	}
	return &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(parent, middlewares...),
		// The redirect handler follows redirects (and drops the token when
		// the host changes); net/http must not follow them again.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// Timeouts apply per attempt (retryHandler.attemptTimeout), so that
		// waiting out a Retry-After does not count against a request.
	}
}
