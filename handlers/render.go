package handlers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// propagationNote is Microsoft's warning for items, repeated wherever a
// change is made: the longest documented propagation time among them.
func propagationNote(items []tenant.Item) string {
	d := maxPropagation(items)
	if d <= 0 {
		return ""
	}
	return "Microsoft documents that these changes can take up to " + longDuration(d) + " to take effect."
}

// propagation is an item's documented propagation time (requests stored
// before items carried it fall back to their kind's).
func propagation(it tenant.Item) time.Duration {
	if it.Propagation > 0 {
		return it.Propagation
	}
	return it.Kind.Propagation()
}

func maxPropagation(items []tenant.Item) time.Duration {
	var d time.Duration
	for _, it := range items {
		d = max(d, propagation(it))
	}
	return d
}

// longDuration says a duration in words for notes: "24 hours", "90 minutes".
func longDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return humanDuration(d)
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// windowWarning warns when a window may end before the change reaches the
// tool's sign-ins; empty when the window is long enough.
func windowWarning(items []tenant.Item, window time.Duration) string {
	var slow []string
	var longest time.Duration
	for _, it := range items {
		if p := propagation(it); p > window {
			slow = append(slow, it.Setting())
			longest = max(longest, p)
		}
	}
	if len(slow) == 0 {
		return ""
	}
	return fmt.Sprintf("The %s window is shorter than the up to %s Microsoft documents for %s to take effect: it may be reverted before the tool's sign-ins see it. Ask for a longer window with --for, or watch “signins”.",
		humanDuration(window), longDuration(longest), strings.Join(slow, "; "))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func severity(s tenant.Severity) bot.Severity {
	switch s {
	case tenant.SeverityOK:
		return bot.SeverityOK
	case tenant.SeverityInfo:
		return bot.SeverityInfo
	case tenant.SeverityWarning:
		return bot.SeverityWarning
	case tenant.SeverityBlocker:
		return bot.SeverityBlocker
	}
	return bot.SeverityNone
}

// stateWord is a request state as a person says it.
func stateWord(s store.State) string {
	switch s {
	case store.RevertFailed:
		return "waiting to retry its revert"
	case store.Applying:
		return "being applied"
	case store.Reverting:
		return "being reverted"
	}
	return string(s)
}

func describeItems(items []tenant.Item) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it.String()
	}
	return strings.Join(parts, "; ")
}

func describeOutcomes(res []itemResult) string {
	parts := make([]string, len(res))
	for i, r := range res {
		o := string(r.Outcome)
		if r.Error != "" {
			o = "error: " + r.Error
		}
		parts[i] = string(r.Item.Kind) + "=" + o
	}
	return strings.Join(parts, ", ")
}

// RenderReport is the answer to diagnose: the findings of rep for tenant
// name, the tool's profile, which of its sign-in paths exist today, and the
// temporary fix with its button only when a change can help.
func RenderReport(name string, tg tenant.Target, rep tenant.Report) bot.Message {
	blockers := 0
	for _, f := range rep.Findings {
		if f.Severity == tenant.SeverityBlocker {
			blockers++
		}
	}
	m := bot.Message{Title: fmt.Sprintf("Diagnosis for %s: %d blocker(s)", name, blockers)}
	switch {
	case blockers == 0:
		m.Text = "Nothing c2bot knows of blocks the tool's sign-ins today."
	case len(rep.Plan) > 0:
		m.Text = "A temporary change can help: it changes the settings below for a bounded window, after an approver agrees, and puts every one back automatically."
	default:
		m.Text = "No temporary change can help: " + noFixReason(rep)
	}
	m.Sections = append(m.Sections, profileSection(tg, rep))
	if s, ok := platformSection(rep.Platform); ok {
		m.Sections = append(m.Sections, s)
	}
	m.Sections = append(m.Sections, findingSections(rep)...)
	if len(rep.Plan) > 0 {
		s := bot.Section{Title: "Temporary fix (needs approval)"}
		for _, it := range rep.Plan {
			s.Facts = append(s.Facts, bot.Fact{Name: it.Setting(), Value: it.Before + " → " + it.After + " (takes up to " + longDuration(propagation(it)) + ")" + permissionNote(it)})
		}
		m.Sections = append(m.Sections, s)
		m.Buttons = []bot.Button{{Label: "Request temporary fix", Command: "fix " + name, Style: bot.StylePrimary}}
	}
	m.Footer = "Checked " + stamp(rep.CheckedAt) + " · tenant " + rep.TenantID
	return m
}

// noFixReason says why nothing c2bot can change helps: the report's own
// reason, or the fixes of the blockers.
func noFixReason(rep tenant.Report) string {
	if rep.NoFix != "" {
		return rep.NoFix
	}
	var fixes []string
	for _, f := range rep.Findings {
		if f.Severity == tenant.SeverityBlocker && f.Fix != "" && !slices.Contains(fixes, f.Fix) {
			fixes = append(fixes, f.Fix)
		}
	}
	if len(fixes) == 0 {
		return "none of the blockers is a setting c2bot can change."
	}
	return "none of the blockers is a setting c2bot can change; " + strings.Join(fixes, "; ") + "."
}

// renderNoFix answers fix when the plan is empty: why, and what does help.
func renderNoFix(name string, rep tenant.Report) bot.Message {
	if !rep.Blocked() {
		return bot.Message{Title: "Nothing to change in " + name,
			Text: "Nothing c2bot knows of blocks the tool's sign-ins today, so nothing was requested. “diagnose” shows the details."}
	}
	m := bot.Message{Title: "No temporary change can help in " + name,
		Text: noFixReason(rep) + " Nothing was requested and nothing was changed."}
	for _, s := range findingSections(rep) {
		if s.Severity == bot.SeverityBlocker {
			m.Sections = append(m.Sections, s)
		}
	}
	m.Footer = "Checked " + stamp(rep.CheckedAt) + " · tenant " + rep.TenantID
	return m
}

// profileSection shows the tool the report is for.
func profileSection(tg tenant.Target, rep tenant.Report) bot.Section {
	p := rep.Profile
	s := bot.Section{Title: "The tool"}
	if tg.Account != "" {
		s.Facts = append(s.Facts, bot.Fact{Name: "Account", Value: tg.Account})
	}
	if p.Product != "" || p.Version != "" {
		s.Facts = append(s.Facts, bot.Fact{Name: "Product", Value: strings.TrimSpace(p.Product + " " + p.Version)})
	}
	auth := authWords(p.Auth)
	switch {
	case p.Inferred && p.InferredFrom != "":
		auth += " — inferred from sign-ins: " + p.InferredFrom
	case p.Inferred:
		auth += " — inferred from sign-ins"
	default:
		auth += " — configured"
	}
	s.Facts = append(s.Facts, bot.Fact{Name: "Signs in with", Value: auth})
	if p.AppID != "" {
		s.Facts = append(s.Facts, bot.Fact{Name: "App id", Value: p.AppID})
	}
	return s
}

// authWords names a tool profile for people.
func authWords(auth string) string {
	switch auth {
	case tenant.AuthLegacy:
		return "legacy authentication (basic auth / IDCRL)"
	case tenant.AuthDelegated:
		return "modern authentication as a user with a password (delegated)"
	case tenant.AuthApp:
		return "its own app registration (app)"
	case "":
		return "unknown"
	}
	return auth
}

// platformSection lists Microsoft's dated facts as they stand today, with
// their sources (their effects are in the findings and the JSON report).
func platformSection(facts []tenant.PlatformFact) (bot.Section, bool) {
	if len(facts) == 0 {
		return bot.Section{}, false
	}
	s := bot.Section{Title: "Sign-in paths today"}
	for _, f := range facts {
		v := stateWords(f.State)
		if !f.Since.IsZero() {
			v += " since " + f.Since.UTC().Format(time.DateOnly)
		}
		v += " · " + f.Source
		s.Facts = append(s.Facts, bot.Fact{Name: f.Title, Value: v})
	}
	return s, true
}

// caSourceWords says who evaluated Conditional Access: Entra itself, or
// c2bot's local evaluation when What If was refused or unavailable.
func caSourceWords(source string) string {
	switch source {
	case tenant.CASourceWhatIf:
		return "Entra's What If (conditionalAccess/evaluate), checked against c2bot's local evaluation"
	case tenant.CASourceLocal:
		return "c2bot's local evaluation (Entra's What If was not available)"
	}
	return source
}

// stateWords says a platform fact's state for people.
func stateWords(state string) string {
	switch state {
	case tenant.StateAvailable:
		return "available"
	case tenant.StatePhasingOut:
		return "phasing out"
	case tenant.StateRetired:
		return "retired"
	case tenant.StateDeprecated:
		return "deprecated"
	case tenant.StateInEffect:
		return "in effect"
	}
	return state
}

// findingSections draws one section per finding; the sign-in finding lists
// the failed groups with what explains each.
func findingSections(rep tenant.Report) []bot.Section {
	var out []bot.Section
	for _, f := range rep.Findings {
		s := bot.Section{Title: f.Title, Severity: severity(f.Severity)}
		if f.Fix != "" {
			s.Text = "Fix: " + f.Fix
		}
		if f.PolicyID != "" {
			s.Facts = append(s.Facts, bot.Fact{Name: "Policy id", Value: f.PolicyID})
		}
		for _, e := range f.Evidence {
			v := e.Value
			if f.Check == tenant.CheckConditionalAccess && e.Name == "evaluated by" {
				v = caSourceWords(v)
			}
			s.Facts = append(s.Facts, bot.Fact{Name: e.Name, Value: v})
		}
		if f.Check == tenant.CheckSignIns {
			for _, g := range rep.SignIns.Failed {
				if len(g.ExplainedBy) > 0 {
					s.Facts = append(s.Facts, bot.Fact{Name: fmt.Sprintf("error %d explained by", g.ErrorCode), Value: strings.Join(g.ExplainedBy, ", ")})
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// cardInfo is what a card shows besides the request itself.
type cardInfo struct {
	now       time.Time
	note      string
	approvers []string
}

func (c *Core) cardInfo(r store.Request) cardInfo { return c.cardInfoNote(r, "") }

func (c *Core) cardInfoNote(r store.Request, note string) cardInfo {
	ci := cardInfo{now: c.now(), note: note}
	if t, ok := c.tenants[r.Tenant]; ok {
		ci.approvers = t.Approvers
	}
	return ci
}

// renderCard draws a request's approval card for its current state.
func renderCard(r store.Request, ci cardInfo) bot.Message {
	items, _ := decodeItems(r)
	results := decodeResults(r)
	subject := fmt.Sprintf("temporary change to %s (%s)", r.Tenant, r.ID)
	if r.ParentID != "" {
		subject = fmt.Sprintf("extend %s by %s (%s)", r.ParentID, humanDuration(r.Duration), r.ID)
	}
	m := bot.Message{}
	who := r.Requester.Name
	if who == "" {
		who = r.Requester.ID
	}
	approver := r.Approver.Name
	if approver == "" {
		approver = r.Approver.ID
	}
	facts := []bot.Fact{{Name: "Requested by", Value: who}}
	if r.Reason != "" {
		facts = append(facts, bot.Fact{Name: "Reason", Value: r.Reason})
	}
	if r.ParentID == "" {
		facts = append(facts, bot.Fact{Name: "Window", Value: humanDuration(r.Duration)})
	} else {
		facts = append(facts, bot.Fact{Name: "Extra time", Value: humanDuration(r.Duration)})
	}
	if r.State != store.Denied && len(r.Approvals) > 0 {
		approver = approverNames(r)
	}
	if r.State == store.Denied && len(r.Approvals) > 0 {
		facts = append(facts, bot.Fact{Name: "Approved by", Value: approverNames(r)})
	}
	if r.Approver.ID != "" {
		verb := "Approved by"
		if r.State == store.Denied {
			verb = "Denied by"
		}
		facts = append(facts, bot.Fact{Name: verb, Value: approver})
	}
	switch r.State {
	case store.Pending:
		m.Title = "Approval needed: " + subject
		if r.ParentID == "" {
			m.Text = fmt.Sprintf("%s asks to change these settings for %s. They are put back automatically when the window ends.", who, humanDuration(r.Duration))
			facts = append(facts, bot.Fact{Name: "Reverts at", Value: fmt.Sprintf("%s after approval (%s if approved now)", humanDuration(r.Duration), stamp(ci.now.Add(r.Duration)))})
		} else {
			m.Text = fmt.Sprintf("%s asks to keep %s's change %s longer.", who, r.ParentID, humanDuration(r.Duration))
		}
		if required(r) > 1 || len(r.Approvals) > 0 {
			facts = append(facts, bot.Fact{Name: "Approvals", Value: approvalsText(r)})
		}
		facts = append(facts, bot.Fact{Name: "Approve by", Value: stamp(r.ExpiresAt)},
			bot.Fact{Name: "Approvers", Value: approverList(ci.approvers)})
		m.Buttons = []bot.Button{
			{Label: "Approve", Command: "approve " + r.ID, Style: bot.StylePrimary},
			{Label: "Deny", Command: "deny " + r.ID, Style: bot.StyleDanger},
		}
	case store.Approved, store.Applying:
		m.Title = "Approved: " + subject
		m.Text = fmt.Sprintf("Approved by %s; applying the change now…", approver)
	case store.Applied:
		if r.ParentID != "" {
			m.Title = "Extension applied: " + subject
			m.Text = fmt.Sprintf("Approved by %s. %s now reverts at %s.", approver, r.ParentID, stamp(r.RevertAt))
			break
		}
		m.Title = "Applied: " + subject
		m.Text = fmt.Sprintf("Approved by %s and applied at %s. Every setting is put back automatically at %s (in %s).",
			approver, stamp(r.AppliedAt), stamp(r.RevertAt), humanDuration(r.RevertAt.Sub(ci.now)))
		facts = append(facts, bot.Fact{Name: "Reverts at", Value: stamp(r.RevertAt)})
		m.Footer = strings.TrimSpace(propagationNote(items) + fmt.Sprintf(" “revert %s” puts them back now; “extend %s 4h” asks for more time.", r.ID, r.ID))
	case store.Reverting:
		m.Title = "Reverting: " + subject
		m.Text = "The window has ended; putting every setting back…"
	case store.Reverted:
		m.Title = "Reverted: " + subject
		m.Text = fmt.Sprintf("Applied %s, reverted %s. %s", stamp(r.AppliedAt), stamp(r.RevertedAt), outcomeSummary(results))
	case store.RevertFailed:
		if r.Attempts == 0 && r.AppliedAt.IsZero() {
			// A rollback whose write has an unknown outcome (recheck).
			m.Title = "Rolled back, re-checking: " + subject
			m.Text = fmt.Sprintf("%s Next check at %s.", r.LastError, stamp(r.DueAt))
			break
		}
		m.Title = "Revert failed, retrying: " + subject
		m.Text = fmt.Sprintf("Attempt %d could not put every setting back: %s. c2bot retries at %s and will not give up.",
			r.Attempts, r.LastError, stamp(r.DueAt))
	case store.Denied:
		m.Title = "Denied: " + subject
		m.Text = fmt.Sprintf("Denied by %s at %s. Nothing was changed.", approver, stamp(r.DecidedAt))
	case store.Expired:
		m.Title = "Expired: " + subject
		m.Text = fmt.Sprintf("No approver answered by %s. Nothing was changed; ask again with “fix”.", stamp(r.ExpiresAt))
	case store.Cancelled:
		m.Title = "Cancelled: " + subject
		m.Text = "Withdrawn before approval. Nothing was changed."
	case store.Failed:
		m.Title = "Failed: " + subject
		m.Text = r.LastError
		if m.Text == "" {
			m.Text = "The change could not be made."
		}
	}
	if ci.note != "" && !strings.Contains(m.Text, ci.note) {
		m.Text += " " + ci.note
	}
	if r.ParentID == "" {
		changes := bot.Section{Title: "Settings"}
		for i, it := range items {
			v := it.Before + " → " + it.After + " (takes up to " + longDuration(propagation(it)) + ")"
			if r.State == store.Pending {
				v += permissionNote(it)
			}
			if i < len(results) {
				v += resultNote(results[i])
			}
			changes.Facts = append(changes.Facts, bot.Fact{Name: it.Setting(), Value: v})
		}
		m.Sections = append(m.Sections, changes)
	}
	m.Sections = append(m.Sections, bot.Section{Title: "Request", Facts: facts})
	if r.ParentID == "" && (r.State == store.Pending || r.State == store.Applied) {
		if w := windowWarning(items, r.Duration); w != "" {
			m.Sections = append(m.Sections, bot.Section{Title: "Shorter than the propagation time", Severity: bot.SeverityWarning, Text: w})
		}
	}
	if m.Footer == "" && r.State == store.Pending {
		m.Footer = propagationNote(items)
	}
	return m
}

// permissionNote warns that a change would fail for want of a permission.
func permissionNote(it tenant.Item) string {
	if it.MissingPermission == "" {
		return ""
	}
	return " (would fail: c2bot's app lacks " + it.MissingPermission + ")"
}

// resultNote says what happened to one item, for the settings list.
func resultNote(r itemResult) string {
	switch {
	case r.Error != "":
		return " (error: " + r.Error + ")"
	case r.Outcome == tenant.Restored:
		return " (reverted to " + r.Item.Before + ")"
	case r.Outcome == tenant.AlreadyOriginal && r.Applied:
		return " (changed back outside c2bot during the window; left alone)"
	case r.Outcome == tenant.AlreadyOriginal:
		return " (never changed)"
	case r.Outcome == tenant.Drifted:
		return " (drift: now " + r.Current + ", not what c2bot set; left alone)"
	case r.Applied:
		return " (applied)"
	}
	return ""
}

func outcomeSummary(res []itemResult) string {
	restored, drift := 0, 0
	for _, r := range res {
		switch r.Outcome {
		case tenant.Restored:
			restored++
		case tenant.Drifted:
			drift++
		case tenant.AlreadyOriginal:
			if r.Applied {
				drift++
			}
		}
	}
	s := fmt.Sprintf("%d setting(s) reverted to their original values.", restored)
	if drift > 0 {
		s += fmt.Sprintf(" %d setting(s) had been changed by someone else during the window and were left alone.", drift)
	}
	return s
}

// renderReverted is the confirmation posted when a window ends.
func renderReverted(r store.Request, res []itemResult) bot.Message {
	m := bot.Message{
		Title: fmt.Sprintf("Reverted: %s is back to its original settings (%s)", r.Tenant, r.ID),
		Text:  outcomeSummary(res),
	}
	s := bot.Section{Title: "Settings"}
	for _, x := range res {
		s.Facts = append(s.Facts, bot.Fact{Name: x.Item.Setting(), Value: "now " + nonEmpty(x.Current, x.Item.Before) + resultNote(x)})
	}
	m.Sections = []bot.Section{s}
	items := make([]tenant.Item, len(res))
	for i, x := range res {
		items[i] = x.Item
	}
	m.Footer = propagationNote(items)
	return m
}

// renderRevertFailed is the alarm posted when a revert attempt fails.
func renderRevertFailed(r store.Request, now time.Time) bot.Message {
	return bot.Message{
		Title: fmt.Sprintf("Revert of %s failed; retrying", r.ID),
		Text: fmt.Sprintf("c2bot could not put every setting of %s back (attempt %d): %s. It retries at %s and keeps trying; “revert %s” tries now.",
			r.Tenant, r.Attempts, r.LastError, stamp(r.DueAt), r.ID),
	}
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// renderStatus lists open requests.
func renderStatus(rs []store.Request, now time.Time) bot.Message {
	m := bot.Message{Title: "Open requests"}
	if len(rs) == 0 {
		m.Text = "No open requests."
		return m
	}
	for _, r := range rs {
		s := bot.Section{Title: fmt.Sprintf("%s · %s · %s", r.ID, r.Tenant, stateWord(r.State))}
		s.Facts = append(s.Facts, bot.Fact{Name: "Requested by", Value: nonEmpty(r.Requester.Name, r.Requester.ID)})
		switch r.State {
		case store.Pending:
			s.Facts = append(s.Facts, bot.Fact{Name: "Approve by", Value: stamp(r.ExpiresAt)})
			if required(r) > 1 {
				s.Facts = append(s.Facts, bot.Fact{Name: "Approvals", Value: approvalsText(r)})
			}
		case store.Applied:
			s.Facts = append(s.Facts, bot.Fact{Name: "Reverts at", Value: fmt.Sprintf("%s (in %s)", stamp(r.RevertAt), humanDuration(r.RevertAt.Sub(now)))})
		case store.RevertFailed:
			s.Facts = append(s.Facts, bot.Fact{Name: "Next retry", Value: stamp(r.DueAt)}, bot.Fact{Name: "Last error", Value: r.LastError})
		}
		if items, err := decodeItems(r); err == nil && r.ParentID == "" {
			s.Text = describeItems(items)
		}
		if r.ParentID != "" {
			s.Text = fmt.Sprintf("Extension of %s by %s", r.ParentID, humanDuration(r.Duration))
		}
		m.Sections = append(m.Sections, s)
	}
	return m
}

// renderSignIns shows the tool's sign-in summary.
func renderSignIns(name string, s tenant.SignInSummary) bot.Message {
	m := bot.Message{Title: fmt.Sprintf("Sign-ins of %s in %s since %s", s.Account, name, stamp(s.Since))}
	if s.Unavailable != "" {
		m.Text = s.Unavailable
		return m
	}
	failed := 0
	for _, g := range s.Failed {
		failed += g.Count
	}
	m.Text = fmt.Sprintf("%d sign-in(s): %d succeeded, %d failed.", s.Total, s.Succeeded, failed)
	for _, g := range s.Failed {
		sec := bot.Section{Title: fmt.Sprintf("Error %d × %d", g.ErrorCode, g.Count), Severity: bot.SeverityBlocker, Text: g.Explanation}
		sec.Facts = append(sec.Facts, bot.Fact{Name: "Failure reason", Value: g.FailureReason})
		if len(g.ClientApps) > 0 {
			sec.Facts = append(sec.Facts, bot.Fact{Name: "Client apps", Value: strings.Join(g.ClientApps, ", ")})
		}
		if g.CAStatus != "" {
			sec.Facts = append(sec.Facts, bot.Fact{Name: "Conditional Access", Value: g.CAStatus})
		}
		if len(g.ExplainedBy) > 0 {
			sec.Facts = append(sec.Facts, bot.Fact{Name: "Explained by", Value: strings.Join(g.ExplainedBy, ", ")})
		}
		sec.Facts = append(sec.Facts, bot.Fact{Name: "Last seen", Value: stamp(g.LastSeen)})
		m.Sections = append(m.Sections, sec)
	}
	return m
}

// renderAudit lists audit events.
func renderAudit(id string, events []store.Event) bot.Message {
	m := bot.Message{Title: "Audit log"}
	if id != "" {
		m.Title += " of " + id
	}
	if len(events) == 0 {
		m.Text = "Nothing recorded yet."
		return m
	}
	s := bot.Section{}
	for _, e := range events {
		v := e.Action
		if e.RequestID != "" {
			v = e.RequestID + " " + v
		}
		if e.Detail != "" {
			v += ": " + e.Detail
		}
		name := fmt.Sprintf("#%d %s · %s", e.Seq, stamp(e.At), e.Actor)
		if e.Tenant != "" {
			name += " · " + e.Tenant
		}
		s.Facts = append(s.Facts, bot.Fact{Name: name, Value: v})
	}
	m.Sections = []bot.Section{s}
	return m
}

// renderHelp lists the commands.
func renderHelp(cmds []command, cfg Config) bot.Message {
	s := bot.Section{}
	for _, c := range cmds {
		s.Facts = append(s.Facts, bot.Fact{Name: c.usage, Value: c.summary})
	}
	return bot.Message{
		Title:    "c2bot commands",
		Text:     "c2bot finds what blocks a backup or migration tool's sign-ins to Microsoft 365 as Microsoft runs it today, changes what can help for a bounded window after approval, and always puts it back; where no change can help, it says why.",
		Sections: []bot.Section{s},
		Footer: fmt.Sprintf("Windows: default %s, between %s and %s. Approvals expire after %s.",
			humanDuration(cfg.DefaultDuration), humanDuration(cfg.MinDuration), humanDuration(cfg.MaxDuration), humanDuration(cfg.ApprovalTTL)),
	}
}
