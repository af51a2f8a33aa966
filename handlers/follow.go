package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// The follow-up of an applied change: c2bot reads the tool's sign-ins until
// the first successful one appears ("took effect after 3h12m"), says at each
// checkpoint that it still fails, and reminds the thread before the revert.
// Its state is persisted on the request (store.Request.Follow) and the
// request's DueAt is the earliest of the revert time, the next poll, the next
// checkpoint and the reminder, so the one scheduler drives it and a restart
// resumes it. Each notice is queued in the outbox in the same transaction
// that records it as done, so none is lost or posted twice.

// Throttling: Graph counts its limits in requests per seconds per app and
// tenant (https://learn.microsoft.com/graph/throttling-limits). A watch reads
// one page set per interval per change, the interval doubling from
// WatchInterval (5 min) to WatchMaxInterval (1 h): a day's watch is about 30
// reads; a 429 is retried by the tenant client with Retry-After, and a read
// that still fails just moves the next one back.

// pollTimeout bounds one read of the sign-in log.
const pollTimeout = time.Minute

// follow is the follow-up state of an applied request.
type follow struct {
	// Account is the tool's account whose sign-ins are watched; empty
	// means no watch.
	Account string `json:"account,omitempty"`
	// NextPoll is when the sign-ins are next read; zero once the watch is over.
	NextPoll time.Time `json:"next_poll,omitzero"`
	// Polls counts the reads made; it also orders concurrent passes.
	Polls int `json:"polls,omitempty"`
	// Checkpoints are offsets from AppliedAt at which c2bot says the change
	// has not taken effect yet; Done counts those already announced.
	Checkpoints []time.Duration `json:"checkpoints,omitempty"`
	Done        int             `json:"done,omitempty"`
	// TookEffect is the time of the first successful sign-in after the change.
	TookEffect time.Time `json:"took_effect,omitzero"`
	// RemindBefore is how long before the revert the thread is reminded
	// (zero: never); RemindedFor is the revert time a reminder was sent for,
	// so an extension brings a new reminder.
	RemindBefore time.Duration `json:"remind_before,omitempty"`
	RemindedFor  time.Time     `json:"reminded_for,omitzero"`
	// LastError is the latest failure to read the sign-ins (or, once
	// reverted, of a late-write check).
	LastError string `json:"last_error,omitempty"`
	// LateWatchUntil: a write of the apply had an unknown outcome, so once
	// reverted the tenant is checked again until then (latewrite.go);
	// LateChecks counts the checks made.
	LateWatchUntil time.Time `json:"late_watch_until,omitzero"`
	LateChecks     int       `json:"late_checks,omitempty"`
}

func decodeFollow(r store.Request) follow {
	var f follow
	if len(r.Follow) > 0 {
		_ = json.Unmarshal(r.Follow, &f)
	}
	return f
}

// newFollow is the follow-up a request starts with when it is applied.
func (c *Core) newFollow(r store.Request, account string) follow {
	f := follow{Account: account, Checkpoints: c.cfg.Checkpoints}
	if t, ok := c.tenants[r.Tenant]; ok {
		f.RemindBefore = t.RemindBefore
	}
	if account != "" {
		f.NextPoll = r.AppliedAt.Add(c.cfg.WatchInterval)
	}
	return f
}

// nextCheckpoint is the time of the next checkpoint inside the window.
func (f follow) nextCheckpoint(r store.Request) (time.Time, bool) {
	if f.Account == "" || !f.TookEffect.IsZero() || f.Done >= len(f.Checkpoints) {
		return time.Time{}, false
	}
	at := r.AppliedAt.Add(f.Checkpoints[f.Done])
	if !at.Before(r.RevertAt) {
		return time.Time{}, false
	}
	return at, true
}

// remindAt is when the reminder for the current revert time is due.
func (f follow) remindAt(r store.Request) (time.Time, bool) {
	if f.RemindBefore <= 0 || f.RemindedFor.Equal(r.RevertAt) {
		return time.Time{}, false
	}
	at := r.RevertAt.Add(-f.RemindBefore)
	if !at.After(r.AppliedAt) {
		return time.Time{}, false // the window is shorter than the notice
	}
	return at, true
}

// watching reports whether the sign-ins are still being read.
func (f follow) watching(r store.Request) bool {
	return f.Account != "" && f.TookEffect.IsZero() && !f.NextPoll.IsZero() && f.NextPoll.Before(r.RevertAt)
}

// appliedDue is the DueAt of an applied request: its revert time, or an
// earlier poll, checkpoint or reminder.
func appliedDue(r store.Request) time.Time {
	f := decodeFollow(r)
	due := r.RevertAt
	if f.watching(r) && f.NextPoll.Before(due) {
		due = f.NextPoll
	}
	if at, ok := f.nextCheckpoint(r); ok && at.Before(due) {
		due = at
	}
	if at, ok := f.remindAt(r); ok && at.Before(due) {
		due = at
	}
	return due
}

// followUp does what is due for an applied request before its revert time:
// read the sign-ins, announce a checkpoint or the change taking effect, and
// send the reminder.
func (c *Core) followUp(ctx context.Context, r store.Request) {
	ctx = requestLog(ctx, r)
	now := c.now()
	f := decodeFollow(r)
	cp, cpOK := f.nextCheckpoint(r)
	poll := f.watching(r) && !f.NextPoll.After(now) || cpOK && !cp.After(now)
	var (
		sum     tenant.SignInSummary
		readErr error
	)
	if poll {
		sum, readErr = c.readSignIns(ctx, r, f.Account)
		if readErr != nil {
			c.log.WarnContext(ctx, "sign-ins not read; will try again", "request", r.ID, "err", readErr)
		}
	}
	polls := f.Polls
	var actions []string
	_, err := c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Applied}, func(r *store.Request, ch *store.Changes) error {
		f := decodeFollow(*r)
		if f.Polls != polls {
			return fmt.Errorf("request %s: follow-up already done: %w", r.ID, store.ErrConflict)
		}
		if poll {
			c.recordPoll(r, &f, ch, now, sum, readErr)
		}
		if at, ok := f.remindAt(*r); ok && !at.After(now) {
			f.RemindedFor = r.RevertAt
			ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "reminded",
				Detail: "reverts at " + r.RevertAt.UTC().Format(time.RFC3339)})
			ch.Outbox = append(ch.Outbox, c.threadPost(*r, c.renderReminder(*r, now)))
		}
		actions = actions[:0]
		for _, e := range ch.Audit {
			actions = append(actions, e.Action)
		}
		r.Follow = mustJSON(f)
		r.DueAt = appliedDue(*r)
		if !r.DueAt.After(now) && r.DueAt.Before(r.RevertAt) {
			// Nothing left due before the revert: never spin on a stale time.
			r.DueAt = r.RevertAt
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			c.log.ErrorContext(ctx, "follow-up not recorded", "request", r.ID, "err", err)
		}
		return
	}
	for _, a := range actions {
		c.observe(a)
	}
	c.wakeDelivery()
}

// readSignIns reads the tool's sign-ins since the change was applied.
func (c *Core) readSignIns(ctx context.Context, r store.Request, account string) (tenant.SignInSummary, error) {
	cl, err := c.client(r)
	if err != nil {
		return tenant.SignInSummary{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	return cl.SignIns(ctx, account, r.AppliedAt)
}

// recordPoll folds one read of the sign-ins into the follow-up, adding the
// notices it calls for to ch.
func (c *Core) recordPoll(r *store.Request, f *follow, ch *store.Changes, now time.Time, sum tenant.SignInSummary, readErr error) {
	f.Polls++
	f.LastError = ""
	switch {
	case readErr == nil && sum.Unavailable != "":
		// No licence or permission: watching is pointless, say so once.
		f.NextPoll = time.Time{}
		f.Done = len(f.Checkpoints)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "watch_stopped", Detail: sum.Unavailable})
		ch.Outbox = append(ch.Outbox, c.threadPost(*r, bot.Message{
			Title: fmt.Sprintf("c2bot cannot watch the tool's sign-ins for %s", r.ID),
			Text:  sum.Unavailable + ". Check the sign-in logs in the Entra admin center to see whether the change took effect.",
		}))
		return
	case readErr == nil && !sum.FirstSucceeded.IsZero() && !sum.FirstSucceeded.Before(r.AppliedAt):
		f.TookEffect = sum.FirstSucceeded
		f.NextPoll = time.Time{}
		after := f.TookEffect.Sub(r.AppliedAt)
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "took_effect",
			Detail: fmt.Sprintf("first successful sign-in of %s at %s, %s after the change", f.Account,
				f.TookEffect.UTC().Format(time.RFC3339), humanDuration(after))})
		ch.Outbox = append(ch.Outbox, c.threadPost(*r, renderTookEffect(*r, *f, sum)))
		return
	case readErr != nil:
		f.LastError = ErrorMessage(readErr)
	}
	// Still failing (or unknown): announce every checkpoint that has passed.
	for {
		at, ok := f.nextCheckpoint(*r)
		if !ok || at.After(now) {
			break
		}
		elapsed := f.Checkpoints[f.Done]
		f.Done++
		ch.Audit = append(ch.Audit, store.Event{Actor: "c2bot", Action: "checkpoint",
			Detail: fmt.Sprintf("%s after the change: %s", humanDuration(elapsed), checkpointSummary(sum, readErr))})
		ch.Outbox = append(ch.Outbox, c.threadPost(*r, renderCheckpoint(*r, *f, elapsed, sum, readErr)))
	}
	// Back off: WatchInterval doubling per read, capped at WatchMaxInterval.
	wait := c.cfg.WatchInterval
	for i := 1; i < f.Polls && wait < c.cfg.WatchMaxInterval; i++ {
		wait *= 2
	}
	f.NextPoll = now.Add(min(wait, c.cfg.WatchMaxInterval))
}

// checkpointSummary is the audit detail of a checkpoint.
func checkpointSummary(sum tenant.SignInSummary, readErr error) string {
	switch {
	case readErr != nil:
		return "sign-ins could not be read: " + ErrorMessage(readErr)
	case len(sum.Failed) == 0:
		return fmt.Sprintf("no successful sign-in yet (%d read)", sum.Total)
	}
	g := sum.Failed[0]
	return fmt.Sprintf("still failing: error %d × %d (%s)", g.ErrorCode, g.Count, g.Explanation)
}

// renderTookEffect is the notice of the first successful sign-in.
func renderTookEffect(r store.Request, f follow, sum tenant.SignInSummary) bot.Message {
	after := f.TookEffect.Sub(r.AppliedAt)
	return bot.Message{
		Title: fmt.Sprintf("The change took effect after %s (%s)", humanDuration(after), r.ID),
		Text: fmt.Sprintf("The first successful sign-in of %s since the change was at %s. c2bot stops watching; the settings are still put back at %s.",
			f.Account, stamp(f.TookEffect), stamp(r.RevertAt)),
		Sections: []bot.Section{{Facts: []bot.Fact{
			{Name: "Sign-ins since the change", Value: fmt.Sprintf("%d, %d succeeded", sum.Total, sum.Succeeded)},
		}}},
	}
}

// renderCheckpoint is the notice that the change has not taken effect yet.
func renderCheckpoint(r store.Request, f follow, elapsed time.Duration, sum tenant.SignInSummary, readErr error) bot.Message {
	items, _ := decodeItems(r)
	m := bot.Message{
		Title:  fmt.Sprintf("Not in effect yet, %s after the change (%s)", humanDuration(elapsed), r.ID),
		Footer: strings.TrimSpace(fmt.Sprintf("%s c2bot keeps watching until the revert at %s.", propagationNote(items), stamp(r.RevertAt))),
	}
	switch {
	case readErr != nil:
		m.Text = fmt.Sprintf("c2bot could not read the sign-ins of %s: %s", f.Account, ErrorMessage(readErr))
	case len(sum.Failed) == 0:
		m.Text = fmt.Sprintf("No successful sign-in of %s since the change (%d sign-in(s) seen). Is the job running?", f.Account, sum.Total)
	default:
		m.Text = fmt.Sprintf("The sign-ins of %s still fail: %d since the change, none succeeded.", f.Account, sum.Total-sum.Succeeded)
		v := tenant.SignInVerdict(sum)
		finding := bot.Section{Title: "Finding: " + v.Title, Severity: severity(v.Severity)}
		if v.Fix != "" {
			finding.Text = "What it means: " + v.Fix
		}
		m.Sections = append(m.Sections, finding)
		for _, g := range sum.Failed {
			sec := bot.Section{Title: fmt.Sprintf("Error %d × %d", g.ErrorCode, g.Count), Severity: bot.SeverityBlocker, Text: g.Explanation}
			if g.FailureReason != "" {
				sec.Facts = append(sec.Facts, bot.Fact{Name: "Failure reason", Value: g.FailureReason})
			}
			sec.Facts = append(sec.Facts, bot.Fact{Name: "Last seen", Value: stamp(g.LastSeen)})
			m.Sections = append(m.Sections, sec)
		}
	}
	return m
}

// renderReminder is the notice before the revert, with Extend and Revert now.
func (c *Core) renderReminder(r store.Request, now time.Time) bot.Message {
	m := bot.Message{
		Title: fmt.Sprintf("%s reverts in %s", r.ID, humanDuration(r.RevertAt.Sub(now))),
		Text: fmt.Sprintf("The temporary change to %s is put back at %s. If the job still needs it, ask for more time (an approver must approve it again); if it is done, revert now.",
			r.Tenant, stamp(r.RevertAt)),
	}
	if d, ok := c.extendBy(r); ok {
		m.Buttons = append(m.Buttons, bot.Button{Label: "Extend", Command: fmt.Sprintf("extend %s %s", r.ID, commandDuration(d)), Style: bot.StylePrimary})
	}
	m.Buttons = append(m.Buttons, bot.Button{Label: "Revert now", Command: "revert " + r.ID, Style: bot.StyleDanger})
	return m
}

// extendBy is what the reminder's Extend button asks for: the default
// window, less if the maximum would be exceeded; false when no room is left.
func (c *Core) extendBy(r store.Request) (time.Duration, bool) {
	room := c.cfg.MaxDuration - r.RevertAt.Sub(r.AppliedAt)
	d := min(c.cfg.DefaultDuration, room).Truncate(time.Minute)
	return d, d >= c.cfg.MinDuration && d > 0
}

// commandDuration writes d so that ParseDuration reads it back: "8h", "90m".
func commandDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}
