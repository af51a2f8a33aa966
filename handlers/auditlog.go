package handlers

import (
	"context"
	"log/slog"
	"time"

	"github.com/c2bot/c2bot/store"
)

// auditLogger wraps the store so that every audit event it commits is also
// written as one structured log line (event=audit), for a SIEM that reads
// the logs. Only committed events are logged.
type auditLogger struct {
	Store
	log *slog.Logger
	now func() time.Time
}

func (s auditLogger) Create(ctx context.Context, r store.Request, ch store.Changes) (store.Request, error) {
	out, err := s.Store.Create(ctx, r, ch)
	if err == nil {
		s.emit(ctx, out, ch.Audit)
	}
	return out, err
}

func (s auditLogger) Transition(ctx context.Context, id string, from []store.State, fn func(r *store.Request, ch *store.Changes) error) (store.Request, error) {
	var added []store.Event
	out, err := s.Store.Transition(ctx, id, from, func(r *store.Request, ch *store.Changes) error {
		err := fn(r, ch)
		added = append(added[:0], ch.Audit...)
		return err
	})
	if err == nil {
		s.emit(ctx, out, added)
	}
	return out, err
}

func (s auditLogger) AppendAudit(ctx context.Context, events ...store.Event) error {
	err := s.Store.AppendAudit(ctx, events...)
	if err == nil {
		s.emit(ctx, store.Request{}, events)
	}
	return err
}

// emit logs events as the store recorded them: those without a request or
// tenant carry r's.
func (s auditLogger) emit(ctx context.Context, r store.Request, events []store.Event) {
	for _, e := range events {
		if e.RequestID == "" {
			e.RequestID = r.ID
		}
		if e.Tenant == "" {
			e.Tenant = r.Tenant
		}
		if e.At.IsZero() {
			e.At = s.now()
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "audit",
			slog.String("event", "audit"),
			slog.Time("at", e.At.UTC()),
			slog.String("action", e.Action),
			slog.String("actor", e.Actor),
			slog.String("request", e.RequestID),
			slog.String("tenant", e.Tenant),
			slog.String("detail", e.Detail))
	}
}
