package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// commandTable is the router: one entry per verb, in help order.
func commandTable() []command {
	return []command{
		{verb: "diagnose", usage: "diagnose [tenant] [--account upn] [--product backup|migration --version X.Y] [--since 24h]",
			summary: "find what blocks the tool's sign-ins, with evidence", run: (*Core).diagnose},
		{verb: "fix", usage: `fix [tenant] [--for 8h] [--reason "…"] [--only KIND[,KIND]]`,
			summary: "ask for a temporary change that helps; an approver must approve it", run: (*Core).fix},
		{verb: "approve", usage: "approve <id>", summary: "approve a request (approvers only)", run: (*Core).approve},
		{verb: "deny", usage: "deny <id>", summary: "deny a request (approvers only)", run: (*Core).deny},
		{verb: "status", usage: "status [id]", summary: "open requests, or one request in detail", run: (*Core).status},
		{verb: "revert", usage: "revert <id>", summary: "put the settings back now", run: (*Core).revertNow},
		{verb: "extend", usage: `extend <id> <duration> [--reason "…"]`, summary: "keep a change longer (needs approval again)", run: (*Core).extend},
		{verb: "cancel", usage: "cancel <id>", summary: "withdraw a request that is not approved yet", run: (*Core).cancel},
		{verb: "signins", usage: "signins [tenant] [--account upn] [--since 24h]", summary: "the tool's recent sign-ins and why they failed", run: (*Core).signins},
		{verb: "audit", usage: "audit [id] [--before N]", summary: "what c2bot did, and who asked", run: (*Core).audit},
		{verb: "help", usage: "help", summary: "this list", run: (*Core).help},
	}
}

// resolveTenant picks the tenant for a command: a leading positional word
// naming a tenant, else the channel's binding, else the only tenant. It also
// enforces the channel allow-list.
func (c *Core) resolveTenant(cmd bot.Command, a *args) (*TenantConfig, error) {
	bound, isBound := c.byConv[cmd.Conv.Key()]
	var named string
	if len(a.pos) > 0 {
		if _, ok := c.tenants[strings.ToLower(a.pos[0])]; ok {
			named = strings.ToLower(a.pos[0])
			a.pos = a.pos[1:]
		}
	}
	switch {
	case isBound && named != "" && named != bound:
		c.metrics.Refused(cmd.Conv.Platform, RefusedWrongChannel)
		return nil, userErrorf("This channel is bound to tenant %s; %s cannot be managed from here.", bound, named)
	case isBound:
		return c.tenants[bound], nil
	case named != "":
		if len(c.tenants[named].Channels) > 0 {
			c.metrics.Refused(cmd.Conv.Platform, RefusedWrongChannel)
			return nil, userErrorf("Tenant %s is managed only from its own channels.", named)
		}
		return c.tenants[named], nil
	case len(c.order) == 1 && len(c.tenants[c.order[0]].Channels) == 0:
		return c.tenants[c.order[0]], nil
	case len(c.byConv) > 0 && !c.anyUnbound():
		c.metrics.Refused(cmd.Conv.Platform, RefusedWrongChannel)
		return nil, userErrorf("c2bot does not take commands in this channel. Use a channel bound to a tenant.")
	}
	return nil, userErrorf("Which tenant? Name one of: %s.", strings.Join(c.tenantNames(), ", "))
}

// anyUnbound reports whether some tenant has no channel binding.
func (c *Core) anyUnbound() bool {
	for _, t := range c.tenants {
		if len(t.Channels) == 0 {
			return true
		}
	}
	return false
}

// requestTenant checks that a request may be handled from this channel.
func (c *Core) requestTenant(cmd bot.Command, r store.Request) (*TenantConfig, error) {
	t, ok := c.tenants[r.Tenant]
	if !ok {
		return nil, userErrorf("Request %s belongs to tenant %s, which is no longer configured.", r.ID, r.Tenant)
	}
	bound, isBound := c.byConv[cmd.Conv.Key()]
	switch {
	case isBound && bound != t.Name:
		return nil, userErrorf("Request %s is for tenant %s; this channel manages %s.", r.ID, t.Name, bound)
	case !isBound && len(t.Channels) > 0:
		return nil, userErrorf("Request %s can be handled only from tenant %s's channels.", r.ID, t.Name)
	}
	return t, nil
}

// Target is what to diagnose for in tenant t: its tool's account and
// profile as configured.
func Target(t TenantConfig) tenant.Target {
	return tenant.Target{Account: t.ToolAccount, Product: t.Product, Version: t.Version, Auth: t.ToolAuth, AppID: t.ToolAppID}
}

// channelSees reports whether the command's channel may see what happened
// in the named tenant: a bound channel sees its own tenant only, an unbound
// channel only tenants that have no channels of their own. Events of no or
// of an unconfigured tenant are seen nowhere.
func (c *Core) channelSees(cmd bot.Command, tenantName string) bool {
	t, ok := c.tenants[tenantName]
	if !ok {
		return false
	}
	if bound, isBound := c.byConv[cmd.Conv.Key()]; isBound {
		return bound == t.Name
	}
	return len(t.Channels) == 0
}

func (c *Core) target(t *TenantConfig, a args) (tenant.Target, error) {
	tg := Target(*t)
	if v, ok := a.flags["account"]; ok {
		tg.Account = v
	}
	if v, ok := a.flags["product"]; ok {
		v = strings.ToLower(v)
		if v != "backup" && v != "migration" {
			return tg, userErrorf("--product must be backup or migration, not %q.", v)
		}
		tg.Product = v
	}
	if v, ok := a.flags["version"]; ok {
		tg.Version = v
	}
	if v, ok := a.flags["since"]; ok {
		d, err := ParseDuration(v)
		if err != nil {
			return tg, userErrorf("--since: %v", err)
		}
		if d > 30*24*time.Hour {
			return tg, userErrorf("--since can reach back 30 days at most.")
		}
		tg.Since = d
	}
	return tg, nil
}

// parseKinds reads a comma-separated list of plan kinds from flag name
// ("--only security_defaults,ca_exclude_user"); an unknown kind is a user
// error naming the valid ones.
func parseKinds(flags map[string]string, name string) ([]tenant.Kind, error) {
	v, ok := flags[name]
	if !ok {
		return nil, nil
	}
	valid := tenant.Kinds()
	names := make([]string, len(valid))
	for i, k := range valid {
		names[i] = string(k)
	}
	var out []tenant.Kind
	for _, p := range strings.Split(v, ",") {
		k := tenant.Kind(strings.ToLower(strings.TrimSpace(p)))
		if k == "" {
			continue
		}
		if !slices.Contains(valid, k) {
			return nil, userErrorf("--%s: unknown kind %q. The kinds are: %s. Nothing was requested.", name, string(k), strings.Join(names, ", "))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, userErrorf("--%s needs a kind: one or more of %s, separated by commas. Nothing was requested.", name, strings.Join(names, ", "))
	}
	return out, nil
}

// tenantTarget reads the options of a command that works on a tenant
// (diagnose, signins, fix): the tenant, no stray words, and the target.
func (c *Core) tenantTarget(cmd bot.Command, a *args, verb string, flags ...string) (*TenantConfig, tenant.Target, error) {
	if err := a.only(flags...); err != nil {
		return nil, tenant.Target{}, userErrorf("%v", err)
	}
	t, err := c.resolveTenant(cmd, a)
	if err != nil {
		return nil, tenant.Target{}, err
	}
	if len(a.pos) > 0 {
		return nil, tenant.Target{}, userErrorf("Unexpected %q. Usage: %s (quote words with spaces).", a.pos[0], c.commands[verb].usage)
	}
	tg, err := c.target(t, *a)
	return t, tg, err
}

func (c *Core) diagnose(ctx context.Context, cmd bot.Command, a args) error {
	t, tg, err := c.tenantTarget(cmd, &a, "diagnose", "account", "product", "version", "since")
	if err != nil {
		return err
	}
	if err := c.limit("diagnose", actorID(cmd), t.Name); err != nil {
		return err
	}
	rep, err := t.Client.Diagnose(ctx, tg)
	if err != nil {
		return fmt.Errorf("diagnose %s: %w", t.Name, err)
	}
	c.audit1(ctx, store.Event{Actor: actorID(cmd), Action: "diagnosed", Tenant: t.Name,
		Detail: fmt.Sprintf("%d findings, %d changes proposed", len(rep.Findings), len(rep.Plan))})
	_, err = c.reply(ctx, cmd, RenderReport(t.Name, tg, rep))
	return err
}

func (c *Core) fix(ctx context.Context, cmd bot.Command, a args) error {
	t, tg, err := c.tenantTarget(cmd, &a, "fix", "for", "reason", "account", "only")
	if err != nil {
		return err
	}
	dur := c.cfg.DefaultDuration
	if v, ok := a.flags["for"]; ok {
		if dur, err = c.checkDuration(v); err != nil {
			return err
		}
	}
	reason, err := c.checkReason(t, a, "fix")
	if err != nil {
		return err
	}
	if err := c.limit("fix", actorID(cmd), t.Name); err != nil {
		return err
	}
	only, err := parseKinds(a.flags, "only")
	if err != nil {
		return err
	}
	rep, err := t.Client.Diagnose(ctx, tg)
	if err != nil {
		return fmt.Errorf("diagnose %s: %w", t.Name, err)
	}
	if len(rep.Plan) == 0 {
		_, err := c.reply(ctx, cmd, renderNoFix(t.Name, rep))
		return err
	}
	plan, err := rep.PlanOnly(only)
	if err != nil {
		return userErrorf("--only: %s. Nothing was requested.", strings.TrimPrefix(err.Error(), tenant.ErrInvalidItem.Error()+": "))
	}
	for i := range plan {
		if plan[i].Propagation == 0 {
			plan[i].Propagation = plan[i].Kind.Propagation()
		}
	}
	items, _ := json.Marshal(plan)
	conv, _ := json.Marshal(cmd.Conv)
	now := c.now()
	r := store.Request{
		Tenant: t.Name, State: store.Pending,
		Requester: person(cmd), Reason: reason, Duration: dur, ApprovalsRequired: t.ApprovalsRequired,
		CreatedAt: now, ExpiresAt: now.Add(c.cfg.ApprovalTTL), DueAt: now.Add(c.cfg.ApprovalTTL),
		Items: items, Conv: conv, Follow: mustJSON(follow{Account: tg.Account}),
	}
	r, err = c.cfg.Store.Create(ctx, r, store.Changes{
		Audit: []store.Event{{Actor: actorID(cmd), Action: "requested", Tenant: t.Name,
			Detail: fmt.Sprintf("for %s: %s%s", humanDuration(dur), describeItems(plan), reasonDetail(reason))}},
	})
	if err != nil {
		return fmt.Errorf("create request: %w", err)
	}
	c.observe("requested")
	c.wake()
	return c.postCard(ctx, r, cmd.Conv, renderCard(r, c.cardInfo(r)))
}

// postCard posts a request's approval card and remembers where it is; when
// the post fails it goes to the outbox, so the request is never lost.
//
// The card goes through the outbox and is delivered at once: a post whose
// answer is lost, or a crash after the platform took it, is then looked up
// before it is posted again (postOnce), and the request's later notices,
// which wait for the card, are never left waiting for a card nobody
// recorded.
func (c *Core) postCard(ctx context.Context, r store.Request, conv bot.Conversation, msg bot.Message) error {
	if err := c.enqueue(ctx, delivery{Kind: deliverCard, RequestID: r.ID, Conv: conv, Msg: msg}); err != nil {
		return err
	}
	if err := c.Flush(ctx); err != nil {
		c.log.WarnContext(ctx, "approval card not posted yet; the outbox retries", "request", r.ID, "err", err)
	}
	return nil
}

// saveCard stores the card reference on the request, whatever its state.
func (c *Core) saveCard(ctx context.Context, id string, ref bot.MessageRef) error {
	raw, _ := json.Marshal(ref)
	_, err := c.cfg.Store.Transition(ctx, id, allStates, func(r *store.Request, _ *store.Changes) error {
		r.Card = raw
		return nil
	})
	return err
}

func (c *Core) checkDuration(v string) (time.Duration, error) {
	d, err := ParseDuration(v)
	if err != nil {
		return 0, userErrorf("%v", err)
	}
	if d < c.cfg.MinDuration || d > c.cfg.MaxDuration {
		return 0, userErrorf("The window must be between %s and %s (got %s).",
			humanDuration(c.cfg.MinDuration), humanDuration(c.cfg.MaxDuration), humanDuration(d))
	}
	return d, nil
}

// loadRequest reads the one request id a command names (approve, deny,
// cancel, revert), loads the request and checks it may be handled here.
func (c *Core) loadRequest(ctx context.Context, cmd bot.Command, a args, verb string) (store.Request, *TenantConfig, error) {
	if err := a.only(); err != nil {
		return store.Request{}, nil, userErrorf("%v", err)
	}
	id, err := oneID(a, c.commands[verb].usage)
	if err != nil {
		return store.Request{}, nil, err
	}
	r, err := c.cfg.Store.Get(ctx, id)
	if err != nil {
		return store.Request{}, nil, err
	}
	t, err := c.requestTenant(cmd, r)
	if err != nil {
		return store.Request{}, nil, err
	}
	return r, t, nil
}

// oneID reads the single request id of approve, deny, cancel, revert.
func oneID(a args, usage string) (string, error) {
	if len(a.pos) != 1 {
		return "", userErrorf("Usage: %s", usage)
	}
	return strings.ToLower(a.pos[0]), nil
}

// checkReason reads --reason of fix or extend: bounded, and required where
// the tenant says so.
func (c *Core) checkReason(t *TenantConfig, a args, verb string) (string, error) {
	reason := strings.TrimSpace(a.flags["reason"])
	if n := utf8.RuneCountInString(reason); n > MaxReason {
		return "", userErrorf("The reason is too long (%d characters; %d at most). Nothing was requested.", n, MaxReason)
	}
	if strings.IndexFunc(reason, unicode.IsControl) >= 0 {
		return "", userErrorf("The reason must be one line of text. Nothing was requested.")
	}
	if reason == "" && t.RequireReason {
		return "", userErrorf("Changes to %s need a reason on record: add --reason \"…\" (for example: %s --reason \"restore job 4711 for the finance site\"). Nothing was requested.",
			t.Name, verb)
	}
	return reason, nil
}

// reasonDetail is the reason as the audit log records it.
func reasonDetail(reason string) string {
	if reason == "" {
		return ""
	}
	return "; reason: " + reason
}

// required is how many distinct approvals r needs.
func required(r store.Request) int { return max(r.ApprovalsRequired, 1) }

// canApprove says whether the sender of cmd may approve r, and if not, why.
// The requester is recognised on every platform listed for them under people.
func (c *Core) canApprove(t *TenantConfig, r store.Request, cmd bot.Command) error {
	who := actorID(cmd)
	if !isApprover(t, who) {
		return userErrorf("You are not an approver for %s, so %s was left as it is. You are %s; approvers: %s.",
			t.Name, r.ID, who, approverList(t.Approvers))
	}
	if c.samePerson(storedID(r, r.Requester), who) && (!t.AllowSelfApproval || required(r) > 1) {
		if required(r) > 1 {
			return userErrorf("You asked for %s yourself, so your approval does not count; %d other approvers must approve it.", r.ID, required(r))
		}
		return userErrorf("You asked for %s yourself; another approver must approve it.", r.ID)
	}
	return nil
}

// approvalsText is "1 of 2 approvals (Bob)".
func approvalsText(r store.Request) string {
	s := fmt.Sprintf("%d of %d approvals", len(r.Approvals), required(r))
	if len(r.Approvals) > 0 {
		s += " (" + approverNames(r) + ")"
	}
	return s
}

// approverNames lists who approved r, in order.
func approverNames(r store.Request) string {
	names := make([]string, 0, len(r.Approvals))
	for _, a := range r.Approvals {
		names = append(names, nonEmpty(a.By.Name, a.By.ID))
	}
	if len(names) == 0 {
		return nonEmpty(r.Approver.Name, r.Approver.ID)
	}
	return strings.Join(names, ", ")
}

// mayManage says whether the sender of cmd asked for r (on any of their
// platforms) or approves for t: who may cancel or revert r.
func (c *Core) mayManage(t *TenantConfig, r store.Request, cmd bot.Command) bool {
	who := actorID(cmd)
	return c.samePerson(storedID(r, r.Requester), who) || isApprover(t, who)
}

func approverList(ids []string) string {
	if len(ids) == 0 {
		return "none configured"
	}
	return strings.Join(ids, ", ")
}

func (c *Core) approve(ctx context.Context, cmd bot.Command, a args) error {
	r, t, err := c.loadRequest(ctx, cmd, a, "approve")
	if err != nil {
		return err
	}
	if err := c.canApprove(t, r, cmd); err != nil {
		return err
	}
	if r.State != store.Pending {
		return userErrorf("%s is already %s; nothing was changed.", r.ID, stateWord(r.State))
	}
	if !c.now().Before(r.ExpiresAt) {
		c.expire(ctx, r.ID)
		return userErrorf("%s expired before it was approved; ask again with “fix”.", r.ID)
	}
	now := c.now()
	r, err = c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Pending}, func(r *store.Request, ch *store.Changes) error {
		if !now.Before(r.ExpiresAt) {
			return userErrorf("%s expired before it was approved; ask again with “fix”.", r.ID)
		}
		// The check and the count are one transaction: a double click by
		// the same approver counts once.
		for _, a := range r.Approvals {
			if c.samePerson(storedID(*r, a.By), actorID(cmd)) {
				return userErrorf("You have already approved %s (%s); another approver must approve it.", r.ID, approvalsText(*r))
			}
		}
		r.Approvals = append(r.Approvals, store.Approval{By: person(cmd), At: now})
		n, need := len(r.Approvals), required(*r)
		if n < need {
			ch.Audit = append(ch.Audit, store.Event{Actor: actorID(cmd), Action: "approval", Detail: fmt.Sprintf("%d of %d", n, need)})
			return nil
		}
		r.State = store.Approved
		r.Approver = person(cmd)
		r.DecidedAt = now
		// Until the apply starts, the lease makes an interrupted approval visible to the scheduler.
		r.DueAt = now.Add(c.cfg.ApplyLease)
		ch.Audit = append(ch.Audit, store.Event{Actor: actorID(cmd), Action: "approved", Detail: fmt.Sprintf("%d of %d: %s", n, need, approverNames(*r))})
		return nil
	})
	if err != nil {
		return err
	}
	if r.State == store.Pending {
		c.observe("approval")
		c.updateCard(ctx, r, "")
		return nil
	}
	c.observe("approved")
	if r.ParentID != "" {
		return c.applyExtension(ctx, r, nil)
	}
	c.updateCard(ctx, r, "")
	c.apply(ctx, r)
	return nil
}

func (c *Core) deny(ctx context.Context, cmd bot.Command, a args) error {
	return c.closePending(ctx, cmd, a, "deny", store.Denied, func(t *TenantConfig, r store.Request) error {
		if !isApprover(t, actorID(cmd)) {
			return userErrorf("You are not an approver for %s, so %s was left as it is. You are %s.", t.Name, r.ID, actorID(cmd))
		}
		return nil
	})
}

func (c *Core) cancel(ctx context.Context, cmd bot.Command, a args) error {
	return c.closePending(ctx, cmd, a, "cancel", store.Cancelled, func(t *TenantConfig, r store.Request) error {
		if !c.mayManage(t, r, cmd) {
			return userErrorf("Only %s or an approver can cancel %s.", label(r.Requester), r.ID)
		}
		if r.State == store.Applied && r.ParentID != "" {
			return userErrorf("%s is already applied: it moved %s's revert time and cannot be withdrawn on its own. “revert %s” puts the settings back now.", r.ID, r.ParentID, r.ParentID)
		}
		if r.State == store.Applied {
			return userErrorf("%s is already applied; use “revert %s” to put the settings back now.", r.ID, r.ID)
		}
		return nil
	})
}

// closePending ends a pending request without touching the tenant (deny,
// cancel), after allowed says the user may.
func (c *Core) closePending(ctx context.Context, cmd bot.Command, a args, verb string, to store.State, allowed func(*TenantConfig, store.Request) error) error {
	r, t, err := c.loadRequest(ctx, cmd, a, verb)
	if err != nil {
		return err
	}
	if err := allowed(t, r); err != nil {
		return err
	}
	if r.State != store.Pending {
		return userErrorf("%s is already %s; nothing was changed.", r.ID, stateWord(r.State))
	}
	now := c.now()
	r, err = c.cfg.Store.Transition(ctx, r.ID, []store.State{store.Pending}, func(r *store.Request, ch *store.Changes) error {
		r.State = to
		r.DueAt = time.Time{}
		r.DecidedAt = now
		if to == store.Denied {
			r.Approver = person(cmd)
		}
		ch.Audit = append(ch.Audit, store.Event{Actor: actorID(cmd), Action: string(to)})
		return nil
	})
	if err != nil {
		return err
	}
	c.observe(string(to))
	c.updateCard(ctx, r, "")
	return nil
}

func (c *Core) revertNow(ctx context.Context, cmd bot.Command, a args) error {
	r, t, err := c.loadRequest(ctx, cmd, a, "revert")
	if err != nil {
		return err
	}
	prefix := ""
	if r.ParentID != "" {
		// An extension is not a change of its own: revert acts on the change
		// it extends, under that change's rule.
		prefix = fmt.Sprintf("%s extends %s, so revert acts on %s. ", r.ID, r.ParentID, r.ParentID)
		if r, err = c.cfg.Store.Get(ctx, r.ParentID); err != nil {
			return err
		}
		if t, err = c.requestTenant(cmd, r); err != nil {
			return err
		}
	}
	if !c.mayManage(t, r, cmd) {
		return userErrorf("%sOnly %s or an approver can revert %s early.", prefix, label(r.Requester), r.ID)
	}
	switch r.State {
	case store.Applied, store.RevertFailed:
	case store.Reverting:
		return userErrorf("%s%s is being reverted right now.", prefix, r.ID)
	default:
		return userErrorf("%s%s is %s; there is nothing to revert.", prefix, r.ID, stateWord(r.State))
	}
	c.audit1(ctx, store.Event{Actor: actorID(cmd), Action: "revert_requested", RequestID: r.ID, Tenant: r.Tenant})
	c.revert(ctx, r.ID, actorID(cmd), false)
	return nil
}

func (c *Core) extend(ctx context.Context, cmd bot.Command, a args) error {
	if err := a.only("reason"); err != nil {
		return userErrorf("%v", err)
	}
	if len(a.pos) != 2 {
		return userErrorf("Usage: %s", c.commands["extend"].usage)
	}
	id := strings.ToLower(a.pos[0])
	d, err := c.checkDuration(a.pos[1])
	if err != nil {
		return err
	}
	parent, err := c.cfg.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	t, err := c.requestTenant(cmd, parent)
	if err != nil {
		return err
	}
	reason, err := c.checkReason(t, a, fmt.Sprintf("extend %s %s", parent.ID, a.pos[1]))
	if err != nil {
		return err
	}
	if parent.ParentID != "" {
		return userErrorf("%s is an extension; extend %s instead.", parent.ID, parent.ParentID)
	}
	if parent.State != store.Applied {
		return userErrorf("%s is %s; only an applied change can be extended.", parent.ID, stateWord(parent.State))
	}
	if total := parent.RevertAt.Add(d).Sub(parent.AppliedAt); total > c.cfg.MaxDuration {
		return userErrorf("That would keep the change for %s in all; the maximum is %s.", humanDuration(total), humanDuration(c.cfg.MaxDuration))
	}
	conv, _ := json.Marshal(cmd.Conv)
	now := c.now()
	r := store.Request{
		Tenant: parent.Tenant, State: store.Pending, ParentID: parent.ID,
		Requester: person(cmd), Reason: reason, Duration: d, ApprovalsRequired: t.ApprovalsRequired,
		CreatedAt: now, ExpiresAt: now.Add(c.cfg.ApprovalTTL), DueAt: now.Add(c.cfg.ApprovalTTL),
		Items: parent.Items, Conv: conv,
	}
	r, err = c.cfg.Store.Create(ctx, r, store.Changes{Audit: []store.Event{{Actor: actorID(cmd), Action: "extension_requested",
		Tenant: parent.Tenant, Detail: fmt.Sprintf("extend %s by %s%s", parent.ID, humanDuration(d), reasonDetail(reason))}}})
	if err != nil {
		return fmt.Errorf("create extension: %w", err)
	}
	c.observe("extension_requested")
	c.wake()
	return c.postCard(ctx, r, cmd.Conv, renderCard(r, c.cardInfo(r)))
}

// applyExtension moves the parent's revert time and marks the extension
// applied in one transaction, so an interruption leaves both done or
// neither (a second run then finds the extension applied and does nothing).
// guard, when set, runs first on the extension inside that transaction.
func (c *Core) applyExtension(ctx context.Context, ext store.Request, guard func(*store.Request) error) error {
	now := c.now()
	_, _, err := c.cfg.Store.TransitionPair(ctx, ext.ID, []store.State{store.Approved}, ext.ParentID, []store.State{store.Applied},
		func(e, p *store.Request, ch *store.Changes) error {
			if guard != nil {
				if err := guard(e); err != nil {
					return err
				}
			}
			newAt := p.RevertAt.Add(e.Duration)
			if newAt.Sub(p.AppliedAt) > c.cfg.MaxDuration {
				return userErrorf("The extension would exceed the maximum window of %s; %s keeps its revert time.", humanDuration(c.cfg.MaxDuration), p.ID)
			}
			p.RevertAt = newAt
			p.DueAt = appliedDue(*p)
			p.Duration += e.Duration
			e.State = store.Applied
			e.DueAt = time.Time{}
			e.AppliedAt = now
			e.RevertAt = newAt
			e.LastError = ""
			ch.Audit = append(ch.Audit, store.Event{Actor: e.Approver.ID, Action: "extended", RequestID: p.ID,
				Detail: fmt.Sprintf("by %s (%s); reverts at %s", humanDuration(e.Duration), e.ID, newAt.UTC().Format(time.RFC3339))})
			ch.Outbox = append(ch.Outbox, c.cardUpdate(*e, ""), c.cardUpdate(*p, ""))
			return nil
		})
	if err == nil {
		c.observe("extended")
		c.wake()
		return nil
	}
	var ce *store.ConflictError
	var ue *userError
	switch {
	case errors.Is(err, errNotDue):
		return err
	case errors.As(err, &ce) && ce.ID == ext.ID:
		return err // the extension itself moved on: a redelivery, nothing to do
	case errors.As(err, &ce):
		err = userErrorf("%s is %s now, so the extension %s was not applied.", ext.ParentID, stateWord(ce.State), ext.ID)
	case errors.As(err, &ue):
	default:
		return fmt.Errorf("apply extension %s: %w", ext.ID, err)
	}
	// The parent cannot take it: the extension fails on its own.
	c.fail(ctx, ext.ID, []store.State{store.Approved}, guard, nil, err)
	return err
}

func (c *Core) status(ctx context.Context, cmd bot.Command, a args) error {
	if err := a.only(); err != nil {
		return userErrorf("%v", err)
	}
	if len(a.pos) == 1 {
		r, err := c.cfg.Store.Get(ctx, strings.ToLower(a.pos[0]))
		if err != nil {
			return err
		}
		if _, err := c.requestTenant(cmd, r); err != nil {
			return err
		}
		_, err = c.reply(ctx, cmd, renderCard(r, c.cardInfo(r)))
		return err
	}
	if len(a.pos) > 1 {
		return userErrorf("Usage: %s", c.commands["status"].usage)
	}
	open, err := c.cfg.Store.List(ctx, 0, store.Pending, store.Approved, store.Applying, store.Applied, store.Reverting, store.RevertFailed)
	if err != nil {
		return fmt.Errorf("list requests: %w", err)
	}
	var visible []store.Request
	for _, r := range open {
		if r.ParentID != "" && r.State != store.Pending {
			continue // approved extensions live on in their parent
		}
		if _, err := c.requestTenant(cmd, r); err == nil {
			visible = append(visible, r)
		}
	}
	_, err = c.reply(ctx, cmd, renderStatus(visible, c.now()))
	return err
}

func (c *Core) signins(ctx context.Context, cmd bot.Command, a args) error {
	t, tg, err := c.tenantTarget(cmd, &a, "signins", "account", "since")
	if err != nil {
		return err
	}
	if tg.Account == "" {
		return userErrorf("Which account? Give --account upn (or configure the tool's account for %s).", t.Name)
	}
	if err := c.limit("signins", actorID(cmd), t.Name); err != nil {
		return err
	}
	since := tg.Since
	if since == 0 {
		since = 24 * time.Hour
	}
	sum, err := t.Client.SignIns(ctx, tg.Account, c.now().Add(-since))
	if err != nil {
		return fmt.Errorf("sign-ins %s: %w", t.Name, err)
	}
	_, err = c.reply(ctx, cmd, renderSignIns(t.Name, sum))
	return err
}

// auditPage is how many events one "audit" reply shows.
const auditPage = 20

func (c *Core) audit(ctx context.Context, cmd bot.Command, a args) error {
	if err := a.only("before"); err != nil {
		return userErrorf("%v", err)
	}
	f := store.AuditFilter{Limit: auditPage + 1}
	if v, ok := a.flags["before"]; ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil || n == 0 {
			return userErrorf("--before takes an event number (the More button gives it), not %q.", v)
		}
		f.BeforeSeq = n
	}
	if len(a.pos) == 1 {
		f.RequestID = strings.ToLower(a.pos[0])
		r, err := c.cfg.Store.Get(ctx, f.RequestID)
		if err != nil {
			return err
		}
		if _, err := c.requestTenant(cmd, r); err != nil {
			return err
		}
	} else if len(a.pos) > 1 {
		return userErrorf("Usage: %s", c.commands["audit"].usage)
	}
	var visible []string
	for _, name := range c.order {
		if c.channelSees(cmd, name) {
			visible = append(visible, name)
		}
	}
	if len(visible) == 0 {
		// An empty filter would keep every tenant's events.
		_, err := c.reply(ctx, cmd, renderAudit(f.RequestID, nil))
		return err
	}
	f.Tenants = visible
	events, err := c.cfg.Store.ListAudit(ctx, f)
	if err != nil {
		return fmt.Errorf("read audit: %w", err)
	}
	more := len(events) > auditPage
	if more {
		events = events[1:]
	}
	msg := renderAudit(f.RequestID, events)
	if more {
		next := fmt.Sprintf("audit --before %d", events[0].Seq)
		if f.RequestID != "" {
			next = fmt.Sprintf("audit %s --before %d", f.RequestID, events[0].Seq)
		}
		msg.Buttons = []bot.Button{{Label: "More", Command: next}}
		msg.Footer = fmt.Sprintf("Older events: “%s”.", next)
	}
	_, err = c.reply(ctx, cmd, msg)
	return err
}

func (c *Core) help(ctx context.Context, cmd bot.Command, a args) error {
	_, err := c.reply(ctx, cmd, renderHelp(c.verbs(), c.cfg))
	return err
}

// person is the sender of cmd as a request stores them: qualified id and name.
// The display name comes from the platform (or the sender's client) and is
// cut to maxNameLen characters.
func person(cmd bot.Command) store.Person {
	name := []rune(strings.TrimSpace(cmd.User.Name))
	if len(name) > maxNameLen {
		name = append(name[:maxNameLen-1], '…')
	}
	return store.Person{ID: actorID(cmd), Name: string(name)}
}

// maxNameLen bounds a display name stored on a request.
const maxNameLen = 80

// audit1 records one event outside a transition; failures are logged.
func (c *Core) audit1(ctx context.Context, e store.Event) {
	if e.At.IsZero() {
		e.At = c.now()
	}
	if err := c.cfg.Store.AppendAudit(ctx, e); err != nil {
		c.log.ErrorContext(ctx, "audit not recorded", "action", e.Action, "err", err)
	}
	c.observe(e.Action)
}

// label is a person's name for messages, or their id when no name is known.
func label(p store.Person) string {
	if p.Name != "" {
		return p.Name
	}
	return p.ID
}
