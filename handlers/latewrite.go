package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// A write whose attempt timed out or lost its connection has an unknown
// outcome: Graph may still take it after c2bot stopped waiting, and
// Microsoft documents no bound on how long after (Graph's pages on errors
// and throttling, https://learn.microsoft.com/graph/errors and
// https://learn.microsoft.com/graph/throttling, give none). The rollback of
// such an apply does not end the request failed but re-checks the tenant a
// backoff later (recheck), and the revert that then ends it reverted keeps
// watching: until lateWatch after the rollback, every item is restored
// again at the retry backoff (Restore reads first and writes only when the
// value differs), so a write that lands late is put back, audited
// (late_write_undone) and announced in the thread. The watch ends with the
// first check that succeeds after lateWatch.
const lateWatch = time.Hour

// lateWatchGrace is how long after lateWatch failing checks are retried
// before the watch is abandoned (audited as late_watch_abandoned).
const lateWatchGrace = 24 * time.Hour

// watchingLate reports whether r is a reverted request whose late-write
// watch is still on.
func watchingLate(r store.Request) bool {
	return r.State == store.Reverted && !decodeFollow(r).LateWatchUntil.IsZero()
}

// lateWatchDue is the next check of a late-write watch after a check at
// done, the nth: the retry backoff, but not past the watch's end.
func (c *Core) lateWatchDue(f follow, done time.Time, n int) time.Time {
	next := done.Add(c.backoff(n))
	if end := f.LateWatchUntil; next.After(end) && done.Before(end) {
		next = end
	}
	return next
}

// lateCheck runs one check of a reverted request's late-write watch.
func (c *Core) lateCheck(ctx context.Context, id string) {
	ctx = withLog(ctx, "request", id)
	now := c.now()
	lease := newLease()
	r, err := c.cfg.Store.Transition(ctx, id, []store.State{store.Reverted}, func(r *store.Request, _ *store.Changes) error {
		if r.DueAt.IsZero() || r.DueAt.After(now) || decodeFollow(*r).LateWatchUntil.IsZero() {
			return errNotDue
		}
		// The check's lease: another replica, or this one after a crash,
		// checks again when it ends.
		r.DueAt = now.Add(c.cfg.ApplyLease)
		r.Lease = lease
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			c.log.ErrorContext(ctx, "late-write check not started", "request", id, "err", err)
		}
		return
	}
	ctx = requestLog(ctx, r)
	items, err := decodeItems(r)
	cl, cerr := c.client(r)
	if err == nil {
		err = cerr
	}
	var undone []itemResult
	var skipped []string
	cerr = err
	if err == nil {
		// A setting that a newer change of this tenant holds now is that
		// change's to restore: putting it back here would undo it.
		held, lerr := c.heldSettings(ctx, r)
		cerr = lerr
		for _, it := range items {
			if lerr != nil {
				break
			}
			if other, ok := held[it.Setting()]; ok {
				skipped = append(skipped, fmt.Sprintf("%s (held by %s)", it.Setting(), other))
				continue
			}
			res, e := cl.Restore(ctx, it)
			if e != nil {
				cerr = errors.Join(cerr, fmt.Errorf("restore %s: %w", it.Setting(), e))
				continue
			}
			if res.Outcome == tenant.Restored {
				undone = append(undone, itemResult{Item: it, Outcome: res.Outcome, Current: res.Current})
			}
		}
	}
	done := c.now()
	var ended bool
	_, err = c.cfg.Store.Transition(ctx, id, []store.State{store.Reverted}, func(r *store.Request, ch *store.Changes) error {
		if r.Lease != lease {
			return errLeaseLost
		}
		r.Lease = ""
		f := decodeFollow(*r)
		f.LateChecks++
		if len(undone) > 0 {
			ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "late_write_undone", Detail: describeOutcomes(undone)})
			ch.Outbox = append(ch.Outbox, c.threadPost(*r, renderLateWriteUndone(*r, undone)))
		}
		if len(skipped) > 0 {
			ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "late_check_skipped",
				Detail: "held by a newer change: " + strings.Join(skipped, ", ")})
		}
		switch {
		case cerr != nil && done.After(f.LateWatchUntil.Add(lateWatchGrace)):
			// Checks have failed for a day past the watch (the tenant is no
			// longer configured, the app lost its permissions): stop, and
			// say so where an auditor looks.
			ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "late_watch_abandoned",
				Detail: "the late-write checks kept failing: " + ErrorMessage(cerr)})
			f.LateWatchUntil, f.LastError = time.Time{}, ErrorMessage(cerr)
			r.DueAt = time.Time{}
			ended = true
		case cerr != nil:
			f.LastError = ErrorMessage(cerr)
			r.DueAt = done.Add(c.backoff(f.LateChecks))
		case !done.Before(f.LateWatchUntil):
			f.LateWatchUntil, f.LastError = time.Time{}, ""
			r.DueAt = time.Time{}
			ended = true
		default:
			f.LastError = ""
			r.DueAt = c.lateWatchDue(f, done, f.LateChecks+1)
		}
		r.Follow = mustJSON(f)
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			c.log.ErrorContext(ctx, "late-write check not recorded", "err", err)
		}
		return
	}
	if len(undone) > 0 {
		c.observe("late_write_undone")
		c.log.WarnContext(ctx, "a write that had timed out landed after the rollback; put back", "outcomes", describeOutcomes(undone))
	}
	switch {
	case ended && cerr != nil:
		c.observe("late_watch_abandoned")
		c.log.ErrorContext(ctx, "late-write watch abandoned: its checks kept failing", "err", cerr)
	case cerr != nil:
		c.log.WarnContext(ctx, "late-write check failed; will retry", "err", cerr)
	case ended:
		c.log.InfoContext(ctx, "late-write watch ended")
	}
	c.wake()
}

// heldSettings maps each setting that another open change of r's tenant
// (approved, applying, applied or being reverted) holds to that change's id.
func (c *Core) heldSettings(ctx context.Context, r store.Request) (map[string]string, error) {
	open, err := c.cfg.Store.List(ctx, 0, store.Approved, store.Applying, store.Applied, store.Reverting, store.RevertFailed)
	if err != nil {
		return nil, fmt.Errorf("list open changes: %w", err)
	}
	held := map[string]string{}
	for _, o := range open {
		if o.ID == r.ID || o.Tenant != r.Tenant || o.ParentID != "" {
			continue
		}
		items, err := decodeItems(o)
		if err != nil {
			continue
		}
		for _, it := range items {
			held[it.Setting()] = o.ID
		}
	}
	return held, nil
}

// renderLateWriteUndone announces a late write that was put back.
func renderLateWriteUndone(r store.Request, res []itemResult) bot.Message {
	s := bot.Section{Title: "Put back", Severity: bot.SeverityWarning}
	for _, x := range res {
		s.Facts = append(s.Facts, bot.Fact{Name: x.Item.Setting(), Value: "now " + nonEmpty(x.Current, x.Item.Before)})
	}
	return bot.Message{
		Title: fmt.Sprintf("Late write undone: %s (%s)", r.Tenant, r.ID),
		Text: "A write c2bot had stopped waiting for reached Microsoft 365 after the rollback and changed the tenant again. " +
			"c2bot put it back to its original value.",
		Sections: []bot.Section{s},
	}
}
