package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

var allStates = []store.State{store.Pending, store.Approved, store.Applying, store.Applied, store.Reverting,
	store.Reverted, store.Denied, store.Expired, store.Failed, store.RevertFailed, store.Cancelled}

// itemResult is what happened to one plan item during apply or revert.
type itemResult struct {
	Item    tenant.Item    `json:"item"`
	Applied bool           `json:"applied,omitempty"`
	Outcome tenant.Outcome `json:"outcome,omitempty"`
	Current string         `json:"current,omitempty"`
	Error   string         `json:"error,omitempty"`
}

func decodeItems(r store.Request) ([]tenant.Item, error) {
	var items []tenant.Item
	if len(r.Items) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(r.Items, &items); err != nil {
		return nil, fmt.Errorf("request %s: decode plan: %w", r.ID, err)
	}
	return items, nil
}

func decodeResults(r store.Request) []itemResult {
	var res []itemResult
	if len(r.Results) > 0 {
		_ = json.Unmarshal(r.Results, &res)
	}
	return res
}

// requestLog returns ctx carrying r's request id, tenant and platform for
// every log line written with it (see LogHandler).
func requestLog(ctx context.Context, r store.Request) context.Context {
	return withLog(ctx, "request", r.ID, "tenant", r.Tenant, "platform", decodeConv(r).Platform)
}

func decodeConv(r store.Request) bot.Conversation {
	var conv bot.Conversation
	_ = json.Unmarshal(r.Conv, &conv)
	return conv
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain data is marshalled here
	}
	return b
}

// client returns the tenant client for a request.
func (c *Core) client(r store.Request) (Tenant, error) {
	t, ok := c.tenants[r.Tenant]
	if !ok {
		return nil, fmt.Errorf("request %s: tenant %s is not configured", r.ID, r.Tenant)
	}
	return t.Client, nil
}

// apply snapshots, commits the revert record, changes the tenant, verifies
// the change and reports it on the card. r is Approved.
func (c *Core) apply(ctx context.Context, r store.Request) {
	ctx = requestLog(ctx, r)
	log := c.log.With("request", r.ID, "tenant", r.Tenant)
	cl, err := c.client(r)
	if err != nil {
		c.fail(ctx, r.ID, []store.State{store.Approved}, nil, nil, err)
		return
	}
	items, err := decodeItems(r)
	if err != nil {
		c.fail(ctx, r.ID, []store.State{store.Approved}, nil, nil, err)
		return
	}
	// 1. Snapshot the current values.
	var snaps []tenant.Item
	var skipped []string
	for _, it := range items {
		s, err := cl.Snapshot(ctx, it)
		if err != nil {
			c.fail(ctx, r.ID, []store.State{store.Approved}, nil, nil, fmt.Errorf("read %s: %w", it.Setting(), err))
			return
		}
		if s.Before == s.After {
			skipped = append(skipped, s.Setting())
			continue
		}
		snaps = append(snaps, s)
	}
	if len(snaps) == 0 {
		c.fail(ctx, r.ID, []store.State{store.Approved}, nil, nil,
			userErrorf("Nothing needed changing any more: %s already hold the values the fix would set.", strings.Join(skipped, ", ")))
		return
	}
	// 2. Commit the snapshot and the revert deadline before the first write,
	// and take the lease this apply must hold for every write.
	now := c.now()
	lease := newLease()
	r, err = c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Approved}, func(r *store.Request, ch *store.Changes) error {
		r.State = store.Applying
		r.Items = mustJSON(snaps)
		r.RevertAt = now.Add(r.Duration)
		r.DueAt = now.Add(c.cfg.ApplyLease)
		r.Lease = lease
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "applying", Detail: describeItems(snaps)})
		return nil
	})
	if err != nil {
		log.ErrorContext(ctx, "apply not started", "err", err)
		return
	}
	c.wake()
	// 3. Write, then read back.
	results := make([]itemResult, len(snaps))
	for i, it := range snaps {
		results[i].Item = it
	}
	for i, it := range snaps {
		// Every write needs the lease: renewed just before it, so a write
		// never starts after the scheduler has judged this apply interrupted.
		if err := c.renewLease(ctx, r.ID, lease); err != nil {
			c.leaseLost(ctx, r, results, err)
			return
		}
		if err := c.write(ctx, cl, it); err != nil {
			results[i].Error = ErrorMessage(err)
			log.ErrorContext(ctx, "apply failed; rolling back", "setting", string(it.Kind), "err", err)
			cause := fmt.Errorf("change %s: %w", it.Setting(), err)
			if unknownOutcome(err) {
				// The write may still land after the rollback has read the
				// tenant: roll back, and keep a re-check scheduled.
				cause = &outcomeUnknown{err: cause}
			}
			c.rollback(ctx, r, lease, results, cause)
			return
		}
		results[i].Applied = true
	}
	for i, it := range snaps {
		if err := cl.Verify(ctx, it); err != nil {
			results[i].Error = ErrorMessage(err)
			log.ErrorContext(ctx, "verify failed; rolling back", "setting", string(it.Kind), "err", err)
			c.rollback(ctx, r, lease, results, fmt.Errorf("verify %s: %w", it.Setting(), err))
			return
		}
	}
	// 4. Applied: the revert timer now runs from the moment the change took effect.
	done := c.now()
	// r2, not r: on a failed transition Transition returns a zero request,
	// and leaseLost needs this one (its tenant, its id).
	r2, err := c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Applying}, func(r *store.Request, ch *store.Changes) error {
		if r.Lease != lease {
			return errLeaseLost
		}
		r.State = store.Applied
		r.Lease = ""
		r.AppliedAt = done
		r.RevertAt = done.Add(r.Duration)
		r.Follow = mustJSON(c.newFollow(*r, decodeFollow(*r).Account))
		r.DueAt = appliedDue(*r)
		r.Results = mustJSON(results)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "applied",
			Detail: fmt.Sprintf("reverts at %s", r.RevertAt.UTC().Format(time.RFC3339))})
		ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, ""))
		return nil
	})
	if err != nil {
		// The lease ran out and the scheduler rolled the change back, maybe
		// before our writes landed: undo them ourselves.
		c.leaseLost(ctx, r, results, err)
		return
	}
	c.observe("applied")
	log.InfoContext(ctx, "change applied", "revert_at", r2.RevertAt)
	c.wake()
}

// fail ends a request that changed nothing in the tenant (or whose changes
// were all rolled back). guard, when set, runs first inside the transition
// and may refuse it (the lease moved on, the request is no longer due).
func (c *Core) fail(ctx context.Context, id string, from []store.State, guard func(*store.Request) error, results []itemResult, cause error) {
	note := ErrorMessage(cause)
	r, err := c.cfg.Store.Transition(ctx, id, from, func(r *store.Request, ch *store.Changes) error {
		if guard != nil {
			if err := guard(r); err != nil {
				return err
			}
		}
		r.State = store.Failed
		r.Lease = ""
		r.DueAt = time.Time{}
		r.LastError = note
		if results != nil {
			r.Results = mustJSON(results)
		}
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "failed", Detail: note})
		ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, note))
		return nil
	})
	if err != nil {
		if errors.Is(err, errLeaseLost) || errors.Is(err, errNotDue) {
			c.log.WarnContext(ctx, "failure not recorded: another worker owns the request", "request", id, "err", err)
		} else {
			c.log.ErrorContext(ctx, "failure not recorded", "request", id, "err", err)
		}
		return
	}
	c.observe("failed")
	c.log.WarnContext(ctx, "request failed", "request", r.ID, "err", cause)
	c.wakeDelivery()
}

// rollback restores every item of an interrupted or failed apply. Restore
// writes only where the tenant still holds the value c2bot set, so items
// never written are left alone. The caller owns the request's lease; the
// closing transition checks it still does.
func (c *Core) rollback(ctx context.Context, r store.Request, lease string, results []itemResult, cause error) {
	cl, err := c.client(r)
	items, derr := decodeItems(r)
	if err == nil {
		err = derr
	}
	if results == nil {
		for _, it := range items {
			results = append(results, itemResult{Item: it})
		}
	}
	var rerr error
	if err == nil {
		for i := range results {
			res, err := cl.Restore(ctx, results[i].Item)
			if err != nil {
				results[i].Error = ErrorMessage(err)
				rerr = errors.Join(rerr, fmt.Errorf("restore %s: %w", results[i].Item.Setting(), err))
				continue
			}
			results[i].Outcome, results[i].Current = res.Outcome, res.Current
		}
	} else {
		rerr = err
	}
	note := ErrorMessage(cause) + " Every setting c2bot had changed was reverted to its snapshot value."
	from := []store.State{store.Applying}
	owns := func(r *store.Request) error {
		if r.Lease != lease {
			return errLeaseLost
		}
		return nil
	}
	if rerr != nil {
		// The rollback itself failed: retry it like any revert, and say so.
		now := c.now()
		r2, err := c.cfg.Store.Transition(ctx, r.ID, from, func(r *store.Request, ch *store.Changes) error {
			if err := owns(r); err != nil {
				return err
			}
			r.State = store.RevertFailed
			r.Lease = ""
			r.Attempts++
			r.LastError = ErrorMessage(rerr) // the sentence people read; the detail is logged
			r.DueAt = now.Add(c.backoff(r.Attempts))
			r.Results = mustJSON(results)
			ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "rollback_failed", Detail: ErrorMessage(rerr)})
			ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, ErrorMessage(cause)), c.threadPost(*r, renderRevertFailed(*r, c.now())))
			return nil
		})
		if errors.Is(err, store.ErrConflict) {
			// Another worker took the request over and may have closed it
			// as failed before our write landed: keep a revert scheduled.
			c.escalate(ctx, r, results, rerr)
			return
		}
		if err != nil {
			c.log.ErrorContext(ctx, "rollback failure not recorded", "request", r.ID, "err", err)
			return
		}
		c.observe("rollback_failed")
		c.log.ErrorContext(ctx, "rollback failed; will retry", "request", r2.ID, "err", rerr)
		c.wake()
		return
	}
	var unknown *outcomeUnknown
	if errors.As(cause, &unknown) {
		c.recheck(ctx, r, owns, results, cause)
		return
	}
	c.fail(ctx, r.ID, from, owns, results, &userError{msg: note})
}

// outcomeUnknown marks a rollback whose failed write has an unknown outcome:
// its attempt timed out or its connection broke, so Graph may have taken it,
// and it may land after the rollback has read the tenant.
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string { return e.err.Error() }
func (e *outcomeUnknown) Unwrap() error { return e.err }

// unknownOutcome reports whether a failed write may have been taken: no
// answer came from Graph (a timeout, a broken connection) and the failure
// was not signing in, which happens before anything is sent.
func unknownOutcome(err error) bool {
	var ge *tenant.GraphError
	return err != nil && !errors.As(err, &ge) && !errors.Is(err, tenant.ErrAuthentication) && !errors.As(err, new(*userError))
}

// recheck ends a rollback whose failed write has an unknown outcome: instead
// of failed (which would stand next to the write if it lands late), the
// request waits as revert_failed for one backoff, and the scheduler's revert
// then restores whatever landed meanwhile and ends it reverted.
func (c *Core) recheck(ctx context.Context, r store.Request, owns func(*store.Request) error, results []itemResult, cause error) {
	now := c.now()
	note := ErrorMessage(cause) + " The write may still land, so c2bot checks the tenant again and puts back whatever it finds changed."
	r2, err := c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Applying}, func(r *store.Request, ch *store.Changes) error {
		if err := owns(r); err != nil {
			return err
		}
		r.State = store.RevertFailed
		r.Lease = ""
		r.LastError = note
		r.DueAt = now.Add(c.backoff(1))
		r.Results = mustJSON(results)
		f := decodeFollow(*r)
		f.LateWatchUntil = now.Add(lateWatch)
		r.Follow = mustJSON(f)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "rollback_recheck",
			Detail: fmt.Sprintf("%s re-check at %s", note, r.DueAt.UTC().Format(time.RFC3339))})
		ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, note))
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		// Another worker took the request over and may have closed it as
		// failed: keep a revert scheduled whoever owns it.
		c.escalate(ctx, r, results, cause)
		return
	}
	if err != nil {
		c.log.ErrorContext(ctx, "rollback re-check not recorded", "request", r.ID, "err", err)
		return
	}
	c.observe("rollback_recheck")
	c.log.WarnContext(ctx, "write outcome unknown; rolled back, re-check scheduled", "request", r2.ID, "next", r2.DueAt, "err", cause)
	c.wake()
}

// errLeaseLost means a worker's lease on a request was taken over: the
// scheduler judged the apply interrupted and rolls it back.
var errLeaseLost = fmt.Errorf("apply lease taken over: %w", store.ErrConflict)

// errNotDue means the scheduler's due list was stale: the request is no
// longer due (an extension moved its revert time, a worker renewed its lease).
var errNotDue = fmt.Errorf("request no longer due: %w", store.ErrConflict)

// newLease returns a fresh lease token.
func newLease() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// renewLease extends the apply lease on request id if lease still owns it,
// and fails with errLeaseLost when it does not (the request left applying or
// another worker took it over).
func (c *Core) renewLease(ctx context.Context, id, lease string) error {
	now := c.now()
	_, err := c.cfg.Store.Transition(ctx, id, []store.State{store.Applying}, func(r *store.Request, _ *store.Changes) error {
		if r.Lease != lease {
			return errLeaseLost
		}
		r.DueAt = now.Add(c.cfg.ApplyLease)
		return nil
	})
	if err != nil && !errors.Is(err, errLeaseLost) && errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w (%v)", errLeaseLost, err)
	}
	return err
}

// write applies one item with a deadline well inside the lease, so a write
// that hangs is abandoned before the scheduler can judge the apply
// interrupted. (A write held past its lease anyway is undone by leaseLost.)
func (c *Core) write(ctx context.Context, cl Tenant, it tenant.Item) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.ApplyLease/2)
	defer cancel()
	return cl.Apply(wctx, it)
}

// leaseLost runs when an apply finds it no longer owns its request: the
// scheduler judged it interrupted and rolled it back, perhaps before a write
// of ours landed. So re-read after the fact: restore every item again
// (Restore writes only where the value c2bot set still holds). If that
// fails, the request goes to revert_failed, so a revert stays scheduled;
// failed never stays next to a changed tenant.
func (c *Core) leaseLost(ctx context.Context, r store.Request, results []itemResult, cause error) {
	log := c.log.With("request", r.ID, "tenant", r.Tenant)
	log.WarnContext(ctx, "apply lost its lease; undoing any write that landed late", "err", cause)
	cl, err := c.client(r)
	var rerr error
	var undone []string
	if err != nil {
		rerr = err
	} else {
		for i := range results {
			res, err := cl.Restore(ctx, results[i].Item)
			if err != nil {
				results[i].Error = ErrorMessage(err)
				rerr = errors.Join(rerr, fmt.Errorf("restore %s: %w", results[i].Item.Setting(), err))
				continue
			}
			results[i].Outcome, results[i].Current = res.Outcome, res.Current
			if res.Outcome == tenant.Restored {
				undone = append(undone, results[i].Item.Setting())
			}
		}
	}
	if rerr == nil {
		if len(undone) > 0 {
			c.audit1(ctx, store.Event{Actor: "c2bot", Action: "late_write_undone", RequestID: r.ID, Tenant: r.Tenant,
				Detail: "written after the apply's lease was taken over: " + strings.Join(undone, ", ")})
		}
		return
	}
	c.escalate(ctx, r, results, rerr)
}

// escalate keeps a revert scheduled for a request whose tenant may still
// hold a change that could not be undone, whoever owns it now: from
// applying or failed it goes to revert_failed, which the scheduler retries.
func (c *Core) escalate(ctx context.Context, r store.Request, results []itemResult, rerr error) {
	log := c.log.With("request", r.ID, "tenant", r.Tenant)
	now := c.now()
	r2, err := c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Applying, store.Failed}, func(r *store.Request, ch *store.Changes) error {
		r.State = store.RevertFailed
		r.Lease = ""
		r.Attempts++
		r.LastError = ErrorMessage(rerr) // the sentence people read; the detail is logged
		r.DueAt = now.Add(c.backoff(r.Attempts))
		r.Results = mustJSON(results)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "rollback_failed",
			Detail: "after the apply's lease was taken over, the tenant could not be read back or restored, so a revert stays scheduled: " + ErrorMessage(rerr)})
		ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, ""), c.threadPost(*r, renderRevertFailed(*r, now)))
		return nil
	})
	if err != nil {
		log.ErrorContext(ctx, "late write not undone, and no revert recorded", "err", err, "restore_err", rerr)
		return
	}
	c.observe("rollback_failed")
	log.ErrorContext(ctx, "late write not undone; revert scheduled", "next", r2.DueAt, "err", rerr)
	c.wake()
}

// revert puts a request's settings back. It is safe to repeat: Restore
// writes only where the value c2bot set still holds. A scheduled revert
// (the scheduler's, from a due list that may be stale) re-checks inside its
// transition that the request is still due, so an extension approved since
// is honoured; a person's "revert" runs at once.
func (c *Core) revert(ctx context.Context, id, actor string, scheduled bool) {
	ctx = withLog(ctx, "request", id)
	if r, err := c.cfg.Store.Get(ctx, id); err == nil {
		ctx = requestLog(ctx, r)
	}
	log := c.log.With("request", id)
	now := c.now()
	var prev []itemResult
	late, retry := time.Duration(-1), false
	r, err := c.cfg.Store.Transition(ctx, id, []store.State{store.Applied, store.RevertFailed, store.Reverting},
		func(r *store.Request, ch *store.Changes) error {
			if r.ParentID != "" {
				return fmt.Errorf("request %s is an extension, not a change: %w", r.ID, store.ErrConflict)
			}
			if r.State == store.Reverting && r.DueAt.After(now) {
				return fmt.Errorf("request %s is being reverted: %w", r.ID, store.ErrConflict)
			}
			if scheduled {
				// An applied request's due time may be a follow-up (a sign-in
				// check, the reminder); its revert is due at RevertAt.
				due := r.DueAt
				if r.State == store.Applied {
					due = r.RevertAt
				}
				if due.After(now) {
					return errNotDue
				}
			}
			late, retry = -1, r.State == store.RevertFailed
			if scheduled && r.State == store.Applied {
				// A scheduled revert (not "revert now"): how late it starts.
				late = now.Sub(r.RevertAt)
			}
			r.State = store.Reverting
			r.DueAt = now.Add(c.cfg.ApplyLease)
			prev = decodeResults(*r)
			ch.Audit = append(ch.Audit, store.Event{Actor: actor, Action: "reverting"})
			return nil
		})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			log.ErrorContext(ctx, "revert not started", "err", err)
		}
		return
	}
	if late >= 0 {
		c.metrics.RevertStarted(late)
	}
	if retry {
		c.observe("revert_retry")
	}
	items, err := decodeItems(r)
	cl, cerr := c.client(r)
	if err == nil {
		err = cerr
	}
	results := make([]itemResult, len(items))
	rerr := err
	for i, it := range items {
		results[i].Item = it
		if i < len(prev) {
			results[i].Applied = prev[i].Applied
		}
		if err != nil {
			continue
		}
		res, e := cl.Restore(ctx, it)
		if e != nil {
			results[i].Error = ErrorMessage(e)
			rerr = errors.Join(rerr, fmt.Errorf("restore %s: %w", it.Setting(), e))
			continue
		}
		results[i].Outcome, results[i].Current = res.Outcome, res.Current
		// An earlier attempt that restored the item is what put it back.
		if res.Outcome == tenant.AlreadyOriginal && i < len(prev) && prev[i].Outcome == tenant.Restored {
			results[i].Outcome = tenant.Restored
		}
	}
	done := c.now()
	if rerr != nil {
		r, err = c.cfg.Store.Transition(ctx, id, []store.State{store.Reverting}, func(r *store.Request, ch *store.Changes) error {
			r.State = store.RevertFailed
			r.Attempts++
			r.LastError = ErrorMessage(rerr) // the sentence people read; the detail is logged
			r.DueAt = done.Add(c.backoff(r.Attempts))
			r.Results = mustJSON(results)
			ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "revert_failed",
				Detail: fmt.Sprintf("attempt %d: %s next try at %s", r.Attempts, ErrorMessage(rerr), r.DueAt.UTC().Format(time.RFC3339))})
			ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, ""))
			if r.Attempts == 1 || r.Attempts%5 == 0 {
				ch.Outbox = append(ch.Outbox, c.threadPost(*r, renderRevertFailed(*r, done)))
			}
			return nil
		})
		if err != nil {
			log.ErrorContext(ctx, "revert failure not recorded", "err", err)
			return
		}
		c.observe("revert_failed")
		log.ErrorContext(ctx, "revert failed; will retry", "attempt", r.Attempts, "next", r.DueAt, "err", rerr)
		c.wake()
		return
	}
	r, err = c.cfg.Store.Transition(ctx, id, []store.State{store.Reverting}, func(r *store.Request, ch *store.Changes) error {
		r.State = store.Reverted
		r.RevertedAt = done
		r.DueAt = time.Time{}
		notice := renderReverted(*r, results)
		if f := decodeFollow(*r); !f.LateWatchUntil.IsZero() {
			// A write of the apply may still land: keep checking.
			r.DueAt = c.lateWatchDue(f, done, 1)
			notice.Text += fmt.Sprintf(" A write that timed out may still land: c2bot checks the tenant again until %s and puts back whatever it finds changed.",
				stamp(f.LateWatchUntil))
		}
		r.LastError = ""
		r.Results = mustJSON(results)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "reverted", Detail: describeOutcomes(results)})
		ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, ""), c.threadPost(*r, notice))
		return nil
	})
	if err != nil {
		log.ErrorContext(ctx, "revert not recorded", "err", err)
		return
	}
	c.observe("reverted")
	log.InfoContext(ctx, "change reverted", "outcomes", describeOutcomes(results))
	c.wake()
}

// expire ends a request whose approval did not come in time.
func (c *Core) expire(ctx context.Context, id string) {
	ctx = withLog(ctx, "request", id)
	now := c.now()
	r, err := c.cfg.Store.Transition(ctx, id, []store.State{store.Pending}, func(r *store.Request, ch *store.Changes) error {
		if now.Before(r.ExpiresAt) {
			return fmt.Errorf("request %s not expired yet: %w", r.ID, store.ErrConflict)
		}
		r.State = store.Expired
		r.DueAt = time.Time{}
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "expired"})
		ch.Outbox = append(ch.Outbox, c.cardUpdate(*r, ""))
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			c.log.ErrorContext(ctx, "expiry not recorded", "request", id, "err", err)
		}
		return
	}
	c.observe("expired")
	c.wakeDelivery()
	c.log.InfoContext(ctx, "request expired", "request", r.ID)
}

// backoff is the wait before retry n (1-based): RetryBase doubling, capped.
func (c *Core) backoff(n int) time.Duration {
	d := c.cfg.RetryBase
	for i := 1; i < n && d < c.cfg.RetryMax; i++ {
		d *= 2
	}
	if d > c.cfg.RetryMax {
		d = c.cfg.RetryMax
	}
	return d
}

// Recover finishes what a previous process left half done: an approval or
// an apply that was interrupted is rolled back at once, and an interrupted
// revert is made due at once. Overdue reverts are then run by RunDue. Run calls it; tests may call it directly.
//
// On a store shared by several replicas (store.Shared) work in flight may be
// another replica's, so nothing is taken over here: an apply or revert whose
// replica died is due when its lease ends, and RunDue takes it then.
func (c *Core) Recover(ctx context.Context) error {
	if c.shared != nil {
		return nil
	}
	open, err := c.cfg.Store.List(ctx, 0, store.Approved, store.Applying, store.Reverting)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	now := c.now()
	for _, r := range open {
		if r.State != store.Reverting {
			c.interrupted(ctx, r, true)
			continue
		}
		// A revert that was under way: make it due now, so RunDue repeats it.
		c.log.WarnContext(ctx, "interrupted revert found; resuming", "request", r.ID)
		if _, err := c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Reverting}, func(r *store.Request, _ *store.Changes) error {
			r.DueAt = now
			return nil
		}); err != nil {
			return fmt.Errorf("recover %s: %w", r.ID, err)
		}
	}
	return nil
}

// interrupted handles an approved or applying request whose worker is gone.
// From the scheduler (force false) it acts only if the request is still due
// inside the transition that takes it over, so a lease renewed since the due
// list was read is respected; at start-up (force true) every such request is
// interrupted, since no other worker can hold the database.
func (c *Core) interrupted(ctx context.Context, r store.Request, force bool) {
	ctx = requestLog(ctx, r)
	now := c.now()
	due := func(r *store.Request) error {
		if !force && r.DueAt.After(now) {
			return errNotDue
		}
		return nil
	}
	if r.ParentID != "" {
		if err := c.applyExtension(ctx, r, due); err != nil && !errors.Is(err, errNotDue) {
			c.log.ErrorContext(ctx, "extension not finished", "request", r.ID, "err", err)
		}
		return
	}
	c.log.WarnContext(ctx, "interrupted request found; rolling back", "request", r.ID, "state", string(r.State))
	if r.State == store.Approved {
		c.fail(ctx, r.ID, []store.State{store.Approved}, due, nil,
			userErrorf("The change was interrupted (c2bot stopped) before anything was written; nothing was changed. Ask again with “fix”."))
		return
	}
	// Take the apply's lease over, so the apply (if it still runs) writes no more.
	lease := newLease()
	r, err := c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Applying}, func(r *store.Request, ch *store.Changes) error {
		if err := due(r); err != nil {
			return err
		}
		r.Lease = lease
		r.DueAt = now.Add(c.cfg.ApplyLease)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "apply_interrupted", Detail: "the apply's lease ran out; rolling back"})
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			c.log.ErrorContext(ctx, "rollback not started", "request", r.ID, "err", err)
		}
		return
	}
	c.rollback(ctx, r, lease, nil, userErrorf("The change was interrupted (c2bot stopped while applying it, or the apply outlived its lease)."))
}

// takeOver claims an approval or apply whose lease ran out before rolling
// it back. On a store shared by replicas several schedulers see it due at
// once: the one whose compare-and-swap renews the lease does the work, the
// others leave it. A single process needs no claim.
func (c *Core) takeOver(ctx context.Context, r store.Request) (store.Request, bool) {
	if c.shared == nil {
		return r, true
	}
	now := c.now()
	id := r.ID
	claimed, err := c.cfg.Store.Transition(ctx, id, []store.State{r.State}, func(r *store.Request, ch *store.Changes) error {
		if r.DueAt.IsZero() || r.DueAt.After(now) {
			return fmt.Errorf("request %s is being handled: %w", r.ID, store.ErrConflict)
		}
		r.DueAt = now.Add(c.cfg.ApplyLease)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "taken_over",
			Detail: "the lease of the " + string(r.State) + " request ran out (its replica stopped); rolling back"})
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			c.log.ErrorContext(ctx, "interrupted request not claimed", "request", id, "err", err)
		}
		return store.Request{}, false
	}
	c.log.WarnContext(ctx, "interrupted request taken over", "request", id, "state", string(claimed.State))
	return claimed, true
}

// RunDue does everything that is due now: expiries, reverts, retries and
// rollbacks of interrupted applies. Run calls it whenever the earliest due
// time passes; tests call it after moving their clock.
func (c *Core) RunDue(ctx context.Context) error {
	c.running.Lock()
	defer c.running.Unlock()
	due, err := c.cfg.Store.Due(ctx, c.now())
	if err != nil {
		return fmt.Errorf("due requests: %w", err)
	}
	for _, r := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch r.State {
		case store.Pending:
			c.expire(ctx, r.ID)
		case store.Approved, store.Applying:
			// On a shared store the takeover claimed it (its due time is now
			// the claim's lease); alone, the due time is re-checked inside
			// the transition.
			if r, ok := c.takeOver(ctx, r); ok {
				c.interrupted(ctx, r, c.shared != nil)
			}
		case store.Applied:
			if c.now().Before(r.RevertAt) {
				c.followUp(ctx, r) // a sign-in check, a checkpoint or the reminder
				continue
			}
			c.revert(ctx, r.ID, "c2bot", true)
		case store.RevertFailed, store.Reverting:
			c.revert(ctx, r.ID, "c2bot", true)
		default:
			if watchingLate(r) {
				c.lateCheck(ctx, r.ID) // a write of the apply may still land
				continue
			}
			// A final state with a stale due time: clear it.
			_, _ = c.cfg.Store.Transition(ctx, r.ID, []store.State{r.State}, func(r *store.Request, _ *store.Changes) error {
				if !r.State.Final() {
					return errNotDue // it moved on since the due list was read
				}
				r.DueAt = time.Time{}
				return nil
			})
		}
	}
	return nil
}

// Run recovers interrupted work, then runs the scheduler and the outbox
// worker until ctx ends. There is one timer, set to the earliest due time.
func (c *Core) Run(ctx context.Context) error {
	if err := c.Recover(ctx); err != nil {
		return err
	}
	done := make(chan struct{}, 3)
	go func() {
		defer func() { done <- struct{}{} }()
		c.loop(ctx, c.wakeOutbox, c.Flush, c.cfg.Store.OutboxNext)
	}()
	waits := 1
	if sh := c.shared; sh != nil {
		// Another replica wrote a due time or a notice: look again, so a
		// revert is not late because its timer lives in another process.
		waits++
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case <-sh.Wakes():
					c.wake()
				}
			}
		}()
	}
	c.loop(ctx, c.wakeSched, c.RunDue, c.cfg.Store.NextDue)
	for range waits {
		<-done
	}
	return nil
}

// storeRetry is how soon the scheduler and the outbox worker try again after
// the store failed.
const storeRetry = time.Second

// loop runs work, then sleeps until next() or a wake-up, until ctx ends.
func (c *Core) loop(ctx context.Context, wake <-chan struct{}, work func(context.Context) error, next func(context.Context) (time.Time, bool, error)) {
	const idle = time.Minute // re-check now and then, whatever the store says
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		failed := false
		if err := work(ctx); err != nil && ctx.Err() == nil {
			c.log.ErrorContext(ctx, "scheduled work failed", "err", err)
			failed = true
		}
		wait := idle
		at, ok, err := next(ctx)
		switch {
		case err != nil || failed:
			// The database is away (a restart, a lost connection): look
			// again soon, so the work resumes when it is back.
			wait = storeRetry
		case ok:
			// A floor keeps an item that stays due (a store error) from spinning.
			wait = min(max(at.Sub(c.now()), 200*time.Millisecond), idle)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}
