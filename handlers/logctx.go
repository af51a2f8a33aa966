package handlers

import (
	"context"
	"log/slog"
	"time"
)

// logAttrsKey holds the log attributes of the request being handled.
type logAttrsKey struct{}

// withLog returns ctx carrying attrs (alternating keys and values, or
// slog.Attr values) for every log line written with it — by the core, the
// tenant client or an adapter — once the logger's handler is wrapped with
// LogHandler. Later values of a key replace earlier ones.
func withLog(ctx context.Context, args ...any) context.Context {
	prev, _ := ctx.Value(logAttrsKey{}).([]slog.Attr)
	r := slog.NewRecord(time.Time{}, 0, "", 0)
	r.Add(args...)
	next := make([]slog.Attr, 0, len(prev)+r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		next = append(next, a)
		return true
	})
	merged := make([]slog.Attr, 0, len(prev)+len(next))
	for _, a := range prev {
		if !hasKey(next, a.Key) {
			merged = append(merged, a)
		}
	}
	return context.WithValue(ctx, logAttrsKey{}, append(merged, next...))
}

func hasKey(attrs []slog.Attr, key string) bool {
	for _, a := range attrs {
		if a.Key == key {
			return true
		}
	}
	return false
}

// LogHandler wraps h so that every record logged with a context carrying
// request attributes (request, tenant, platform) gets them, whichever
// package logs it. Attributes the logger already has are not repeated.
func LogHandler(h slog.Handler) slog.Handler { return &ctxHandler{inner: h} }

type ctxHandler struct {
	inner slog.Handler
	// have are the keys added with WithAttrs, which the context must not repeat.
	have []string
}

func (h *ctxHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(logAttrsKey{}).([]slog.Attr); ok && len(attrs) > 0 {
		present := map[string]bool{}
		for _, k := range h.have {
			present[k] = true
		}
		r.Attrs(func(a slog.Attr) bool {
			present[a.Key] = true
			return true
		})
		r = r.Clone()
		for _, a := range attrs {
			if !present[a.Key] {
				r.AddAttrs(a)
			}
		}
	}
	return h.inner.Handle(ctx, r)
}

func (h *ctxHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	have := append([]string(nil), h.have...)
	for _, a := range attrs {
		have = append(have, a.Key)
	}
	return &ctxHandler{inner: h.inner.WithAttrs(attrs), have: have}
}

func (h *ctxHandler) WithGroup(name string) slog.Handler {
	// Keys inside a group no longer clash with the request's.
	return &ctxHandler{inner: h.inner.WithGroup(name)}
}
