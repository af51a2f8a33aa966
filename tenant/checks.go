package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Check ids, in the order findings are reported (CheckExchangeBasicAuth,
// for legacy tools, comes first).
const (
	CheckSecurityDefaults       = "security_defaults"
	CheckSharePointLegacyAuth   = "sharepoint_legacy_auth"
	CheckSharePointInvitedMatch = "sharepoint_invited_match"
	CheckConditionalAccess      = "conditional_access"
	CheckSignIns                = "signins"
	CheckVersion                = "version"
)

// defaultSince is how far back sign-ins are read when Target.Since is zero.
const defaultSince = 24 * time.Hour

// Minimum tool versions that sign in to Exchange Online with modern auth.
var minVersions = map[string][2]int{
	"backup":    {2, 3},
	"migration": {3, 2},
}

// CheckExchangeBasicAuth is the finding about Exchange Online basic
// authentication (legacy tools only); CheckAppRegistration the one about an
// app tool's own registration (its service principal and credentials).
const (
	CheckExchangeBasicAuth = "exchange_basic_auth"
	CheckAppRegistration   = "app_registration"
)

// appRegistrationCodes are the sign-in errors of an app whose registration
// or credentials are wrong: nothing c2bot changes fixes them
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
var appRegistrationCodes = map[int]string{
	700016:  "the app has no service principal in this tenant: an admin must consent to it here",
	7000215: "the app sends a wrong client secret: enter the secret's value, not its id, in the tool",
	7000222: "the app's client secret has expired: create a new one and enter it in the tool",
	7000218: "the app sends no secret or certificate: configure its credentials in the tool",
	700027:  "the app's certificate does not match the one registered: upload it to the app registration",
	7000112: "the app is disabled in this tenant: enable its service principal",
}

// checkResult is what one check contributes to a report.
type checkResult struct {
	findings []Finding
	plan     []Item
	// graphErrs are the Graph failures the check turned into findings;
	// graphOK is set when at least one Graph read succeeded.
	graphErrs []error
	graphOK   bool
}

func (r *checkResult) add(f Finding, items ...Item) {
	r.findings = append(r.findings, f)
	for _, it := range items {
		it.Propagation = it.Kind.Propagation()
		r.plan = append(r.plan, it)
	}
}

// failed records a check that could not run as a warning finding.
func (r *checkResult) failed(check, what string, err error) {
	r.graphErrs = append(r.graphErrs, err)
	r.findings = append(r.findings, Finding{
		Check:    check,
		Severity: SeverityWarning,
		Title:    fmt.Sprintf("could not check %s: %v", what, err),
	})
}

// signInRead is one read of the sign-in log.
type signInRead struct {
	sum    SignInSummary
	lastOK time.Time
	err    error
}

// gathered is everything Diagnose read from the tenant; assess turns it into
// findings and the plan without I/O, on the date now.
type gathered struct {
	now     time.Time
	target  Target
	profile Profile

	sd    securityDefaults
	sdErr error
	sp    sharepointSettings
	spErr error
	// user and app are the tool account's and the tool app's sign-ins; nil
	// when not read.
	user, app *signInRead

	principal    *CAPrincipal
	principalErr error
	signIns      []CASignIn
	ca           *CAEvaluation
	caErr        error
}

// Diagnose reads the tenant and returns the findings and the change plan,
// true for the tool's profile on the client's date: it reads Security
// defaults, SharePoint's settings and the tool's sign-ins concurrently,
// settles the profile (configured, or inferred from the sign-ins), then
// evaluates Conditional Access for the tool's account or service principal.
// A check that cannot run becomes a finding; an error is returned for an
// Auth that is not a profile, or when nothing could be read at all (bad
// credentials), and then it wraps ErrAuthentication or a 401 GraphError.
func (c *Client) Diagnose(ctx context.Context, t Target) (Report, error) {
	g := gathered{now: c.now(), target: t}
	since := t.Since
	if since <= 0 {
		since = defaultSince
	}
	from := g.now.Add(-since)
	t.Auth = strings.ToLower(strings.TrimSpace(t.Auth))
	switch t.Auth {
	case "", AuthLegacy, AuthDelegated, AuthApp:
	default:
		return Report{}, fmt.Errorf("diagnose: tool auth %q: want %s, %s or %s (or nothing, to infer it)", t.Auth, AuthLegacy, AuthDelegated, AuthApp)
	}
	g.target = t

	var eg errgroup.Group
	eg.Go(func() error { g.sd, g.sdErr = c.getSecurityDefaults(ctx); return nil })
	eg.Go(func() error { g.sp, g.spErr = c.getSharepointSettings(ctx); return nil })
	if t.Account != "" && t.Auth != AuthApp {
		g.user = &signInRead{}
		eg.Go(func() error {
			g.user.sum, g.user.lastOK, g.user.err = c.signIns(ctx, t.Account, from)
			return nil
		})
	}
	if t.AppID != "" && (t.Auth == "" || t.Auth == AuthApp) {
		g.app = &signInRead{}
		eg.Go(func() error {
			g.app.sum, g.app.lastOK, g.app.err = c.servicePrincipalSignIns(ctx, t.AppID, from)
			return nil
		})
	}
	_ = eg.Wait()
	g.profile = inferProfile(t, g.user, g.app)

	// Conditional Access for the principal the tool signs in as.
	g.signIns = caSignInsFor(g.profile.Auth)
	var who CAPrincipal
	switch {
	case g.profile.Auth == AuthApp && t.AppID != "":
		who, g.principalErr = c.ResolveServicePrincipal(ctx, t.AppID)
	case g.profile.Auth != AuthApp && t.Account != "":
		who, g.principalErr = c.ResolveUser(ctx, t.Account)
	}
	switch {
	case g.principalErr == nil && who.ID != "":
		g.principal = &who
		ev, err := c.EvaluateConditionalAccess(ctx, who, g.signIns)
		g.ca, g.caErr = &ev, err
	case g.principalErr == nil && g.profile.Auth != AuthApp:
		// No account: evaluate locally for any member user, so a policy that
		// covers everyone is still reported (without a plan item: there is
		// nobody to exclude). An app tool without an app id is not
		// evaluated: no user policy is about it.
		ev, err := c.evaluateAnyMember(ctx, g.signIns)
		g.ca, g.caErr = &ev, err
	}

	rep, errs, anyRead := assess(g)
	rep.TenantID = c.cfg.TenantID
	if !anyRead && len(errs) > 0 && !slices.ContainsFunc(errs, func(err error) bool { return !IsAuthError(err) }) {
		return Report{}, fmt.Errorf("diagnose: %w", errs[0])
	}
	rep.Findings = append(rep.Findings, c.permissionFindings(ctx, rep.Plan)...)
	return rep, nil
}

// evaluateAnyMember evaluates the enabled and report-only policies locally for
// an unnamed member user.
func (c *Client) evaluateAnyMember(ctx context.Context, sis []CASignIn) (CAEvaluation, error) {
	pols, err := c.listCAPolicies(ctx)
	if err != nil {
		return CAEvaluation{}, err
	}
	anyone := CAPrincipal{Kind: CAPrincipalUser, UserType: "member"}
	ev := CAEvaluation{Source: CASourceLocal, WhatIfError: "no tool account or app id: evaluated for any member user"}
	for _, p := range pols {
		if p.State == "disabled" {
			continue
		}
		for _, si := range sis {
			ev.Verdicts = append(ev.Verdicts, EvaluateCAPolicy(p, anyone, si))
		}
	}
	return ev, nil
}

// caSignInsFor is the sign-ins a tool of the profile makes: to Exchange
// Online and SharePoint Online, with the client app type Entra sees.
// Basic auth to Exchange is exchangeActiveSync (EAS) or other (EWS, IMAP,
// POP…); IDCRL to SharePoint is other; modern auth as a user is
// mobileAppsAndDesktopClients; an app signs in with client credentials.
func caSignInsFor(auth string) []CASignIn {
	switch auth {
	case AuthDelegated:
		return []CASignIn{
			{Auth: auth, ClientAppType: "mobileAppsAndDesktopClients", Application: AppExchangeOnline},
			{Auth: auth, ClientAppType: "mobileAppsAndDesktopClients", Application: AppSharePointOnline},
		}
	case AuthApp:
		return []CASignIn{
			{Auth: auth, Application: AppExchangeOnline},
			{Auth: auth, Application: AppSharePointOnline},
		}
	}
	return []CASignIn{
		{Auth: AuthLegacy, ClientAppType: "exchangeActiveSync", Application: AppExchangeOnline},
		{Auth: AuthLegacy, ClientAppType: "other", Application: AppExchangeOnline},
		{Auth: AuthLegacy, ClientAppType: "other", Application: AppSharePointOnline},
	}
}

// pathOpen reports whether a sign-in of this kind can still succeed on now
// once the tenant allows it: a legacy one only while Microsoft has not
// retired its protocol (Exchange basic auth since 2022-10-01; SharePoint
// IDCRL blocked by default since 2026-02-16, and then re-enabled only by a
// PowerShell switch Graph cannot set); modern and app sign-ins always.
func pathOpen(si CASignIn, now time.Time) bool {
	if si.Auth != AuthLegacy {
		return true
	}
	if si.Application == AppExchangeOnline {
		return factState(FactExchangeBasicAuth, now) != StateRetired
	}
	return factState(FactSharePointIDCRL, now) == StateAvailable
}

// anyPathOpen reports whether any of the profile's sign-ins can still succeed.
func anyPathOpen(auth string, now time.Time) bool {
	return slices.ContainsFunc(caSignInsFor(auth), func(si CASignIn) bool { return pathOpen(si, now) })
}

// modernClientApps are the clientAppUsed values of modern authentication;
// every other value (Exchange ActiveSync, IMAP4, POP3, SMTP, Exchange Web
// Services, MAPI Over HTTP, Other clients, …) is a legacy client
// (https://learn.microsoft.com/entra/identity/monitoring-health/concept-sign-in-log-activity-details).
var modernClientApps = map[string]bool{"Browser": true, "Mobile Apps and Desktop clients": true}

// inferProfile settles the tool's profile: the configured Auth, or else what
// its sign-ins show (service-principal sign-ins of its app → app; user
// sign-ins with legacy clients → legacy; with modern clients → delegated).
func inferProfile(t Target, user, app *signInRead) Profile {
	p := Profile{Product: strings.ToLower(strings.TrimSpace(t.Product)), Version: strings.TrimSpace(t.Version), AppID: t.AppID}
	if t.Auth != "" {
		p.Auth = t.Auth
		return p
	}
	p.Inferred = true
	if app != nil && app.err == nil && app.sum.Total > 0 {
		p.Auth = AuthApp
		p.InferredFrom = fmt.Sprintf("%d service-principal sign-ins of app %s", app.sum.Total, t.AppID)
		return p
	}
	if user != nil && user.err == nil && len(user.sum.clientApps) > 0 {
		legacy, modern := 0, 0
		var parts []string
		for _, app := range sortedCounts(user.sum.clientApps) {
			n := user.sum.clientApps[app]
			if modernClientApps[app] {
				modern += n
			} else {
				legacy += n
			}
			parts = append(parts, fmt.Sprintf("%s × %d", app, n))
		}
		p.Auth = AuthDelegated
		if legacy >= modern {
			p.Auth = AuthLegacy
		}
		p.InferredFrom = fmt.Sprintf("clientAppUsed of %s's sign-ins: %s", t.Account, strings.Join(parts, ", "))
		return p
	}
	if t.AppID != "" {
		p.Auth = AuthApp
		p.InferredFrom = "a tool app id is configured; no sign-ins to infer from"
		return p
	}
	p.Auth = AuthLegacy
	p.InferredFrom = "no sign-ins to infer from: assumed legacy, the case the vendor's procedure is for"
	return p
}

func sortedCounts(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// assessment builds a report from what was gathered.
type assessment struct {
	gathered
	checkResult
	// sdBlocks is set when Security defaults block the tool today.
	sdBlocks bool
	// blockingPolicies are the enforced policies that block the tool, with
	// the grant controls that defeat it.
	blockingPolicies []blockingPolicy
}

type blockingPolicy struct {
	id       string
	controls []string
}

// assess grades what was gathered; it returns the report, the Graph errors
// met and whether any read succeeded.
func assess(g gathered) (Report, []error, bool) {
	a := &assessment{gathered: g}
	rep := Report{CheckedAt: g.now, Profile: g.profile, Platform: PlatformFacts(g.now)}

	if g.profile.Auth == AuthLegacy {
		a.checkExchange()
	}
	a.checkSecurityDefaults()
	a.checkSharePoint()
	caItems := a.checkConditionalAccess()
	if g.profile.Auth == AuthApp {
		a.checkAppRegistration()
	}
	si := a.checkSignIns(&rep)
	versionOld := a.checkVersion()

	rep.Findings = a.findings
	// The scoped Conditional Access fix never bundles a tenant-wide change.
	// (An enforced policy and Security defaults cannot both be on in Entra,
	// so a tenant-wide item here could only come from another check.)
	if len(caItems) > 0 {
		rep.Plan = caItems
	} else {
		rep.Plan = a.plan
	}
	if versionOld {
		// Version advice stops the fix: the answer is the update.
		rep.Plan = nil
	}
	if rep.Blocked() && len(rep.Plan) == 0 {
		rep.NoFix = a.noFix(versionOld)
	}
	if si != nil {
		rep.SignIns = *si
	}
	return rep, a.graphErrs, a.graphOK
}

// wayOut is the vendor's way out for a tool Microsoft's changes left behind.
func wayOut(product string) string {
	switch product {
	case "backup":
		return "update the backup tool to 2.3 or later and connect it with its own app registration"
	case "migration":
		return "update the migration tool to 3.2 or later and connect it with its own app registration"
	}
	return "update the tool (Backup 2.3, Migration 3.2 or later) and connect it with its own app registration"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// noFix says why no change can help a blocked tool.
func (a *assessment) noFix(versionOld bool) string {
	way := wayOut(a.profile.Product)
	switch {
	case versionOld:
		return fmt.Sprintf("%s %s is too old: no tenant change makes it work; update the tool: %s.", a.profile.Product, a.profile.Version, way)
	case a.profile.Auth == AuthLegacy && !anyPathOpen(AuthLegacy, a.now):
		if factState(FactSharePointIDCRL, a.now) == StatePhasingOut {
			return "The tool signs in with legacy authentication: Exchange Online basic auth is retired (2022-10-01) and SharePoint Online blocks IDCRL by default since 2026-02-16; until 2026-04-30 only PowerShell (Set-SPOTenant -AllowLegacyAuthProtocolsEnabledSetting $true, then -LegacyAuthProtocolsEnabled $true) can re-enable it, which Graph cannot set, and from 2026-05-01 nothing can. The answer is to update the tool: " + way + "."
		}
		return "The tool signs in with legacy authentication, which Microsoft has retired (Exchange Online basic auth on 2022-10-01, SharePoint Online IDCRL on 2026-05-01): no tenant setting brings it back. The answer is to update the tool: " + way + "."
	case a.profile.Auth == AuthLegacy && factState(FactExchangeBasicAuth, a.now) == StateRetired:
		return "What still blocks the tool is Exchange Online basic auth, retired on 2022-10-01: no tenant setting brings it back. The answer is to update the tool: " + way + "."
	}
	return "No change c2bot can make helps with what blocks the tool; see the findings."
}

func factEvidence(id string, now time.Time) []Evidence {
	for _, f := range PlatformFacts(now) {
		if f.ID == id {
			ev := []Evidence{{Name: "platform " + f.ID, Value: f.State}}
			if !f.Since.IsZero() {
				ev = append(ev, Evidence{Name: "since", Value: f.Since.Format(time.DateOnly)})
			}
			return append(ev, Evidence{Name: "source", Value: f.Source})
		}
	}
	return nil
}

// checkExchange reports Exchange Online basic auth for a legacy tool.
func (a *assessment) checkExchange() {
	ev := factEvidence(FactExchangeBasicAuth, a.now)
	if factState(FactExchangeBasicAuth, a.now) == StateRetired {
		a.add(Finding{
			Check:    CheckExchangeBasicAuth,
			Severity: SeverityBlocker,
			Title:    "Exchange Online basic authentication was retired on 2022-10-01: no tenant setting can bring the tool's Exchange sign-ins back",
			Evidence: ev,
			Fix:      capitalize(wayOut(a.profile.Product)),
		})
		return
	}
	a.add(Finding{
		Check:    CheckExchangeBasicAuth,
		Severity: SeverityWarning,
		Title:    "Exchange Online basic authentication is being turned off protocol by protocol; it is permanently off from 2022-10-01",
		Evidence: ev,
		Fix:      capitalize(wayOut(a.profile.Product)) + " before then",
	})
}

func (a *assessment) checkSecurityDefaults() {
	if a.sdErr != nil {
		a.failed(CheckSecurityDefaults, "Security defaults", a.sdErr)
		return
	}
	a.graphOK = true
	sd := a.sd
	ev := []Evidence{
		{Name: "isEnabled", Value: strconv.FormatBool(sd.Enabled)},
		{Name: "policy", Value: strings.TrimSpace(sd.Name + " " + sd.ID)},
		{Name: "source", Value: SourceSecurityDefaults},
	}
	f := Finding{Check: CheckSecurityDefaults, Evidence: ev}
	if !sd.Enabled {
		f.Severity, f.Title = SeverityOK, "Security defaults are off"
		a.add(f)
		return
	}
	switch a.profile.Auth {
	case AuthApp:
		f.Severity = SeverityOK
		f.Title = "Security defaults are on; they do not affect an app signing in with its own credentials"
		a.add(f)
	case AuthDelegated:
		if r := a.toolSignIns(); r != nil && r.err == nil && !r.lastOK.IsZero() && r.lastOK.After(lastFailure(r.sum)) {
			f.Severity = SeverityWarning
			f.Title = "Security defaults are on (they require MFA), but the tool's latest sign-in succeeded"
			a.add(f)
			return
		}
		a.sdBlocks = true
		f.Severity = SeverityBlocker
		f.Title = "Security defaults are on: they require MFA, which the tool cannot do signing in as a user with a password (error 50076)"
		// Security defaults have no exclusions: turning them off is the only
		// change that helps, and it is tenant-wide.
		f.Fix = "Turn Security defaults off for the window (tenant-wide: MFA requirements and the legacy-auth block lift for every user); the lasting fix is to connect the tool with its own app registration"
		a.add(f, Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
	default: // legacy
		switch {
		case anyPathOpen(AuthLegacy, a.now):
			a.sdBlocks = true
			f.Severity = SeverityBlocker
			f.Title = "Security defaults are on: legacy authentication is blocked tenant-wide (error 530035)"
			f.Fix = "Turn Security defaults off for the window (tenant-wide: basic auth opens for every user); before 2026-02-16 — after that SharePoint blocks IDCRL by default — " + wayOut(a.profile.Product)
			a.add(f, Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
		case factState(FactSharePointIDCRL, a.now) == StatePhasingOut:
			f.Severity = SeverityWarning
			f.Title = "Security defaults are on and block legacy authentication (error 530035); turning them off alone cannot help: SharePoint blocks IDCRL by default since 2026-02-16"
			f.Fix = "Only with the PowerShell switch (until 2026-04-30) would Security defaults also have to be off; c2bot proposes neither: " + wayOut(a.profile.Product)
			a.add(f)
		default:
			f.Severity = SeverityInfo
			f.Title = "Security defaults are on and block legacy authentication (error 530035); turning them off cannot help: the tool's legacy sign-in paths are retired"
			a.add(f)
		}
	}
}

func lastFailure(s SignInSummary) time.Time {
	var t time.Time
	for _, g := range s.Failed {
		t = maxTime(t, g.LastSeen)
	}
	return t
}

// toolSignIns is the sign-in read that belongs to the profile.
func (a *assessment) toolSignIns() *signInRead {
	if a.profile.Auth == AuthApp {
		return a.app
	}
	return a.user
}

// checkSharePoint serves both SharePoint checks from one read.
func (a *assessment) checkSharePoint() {
	if a.spErr != nil {
		a.failed(CheckSharePointLegacyAuth, "SharePoint settings", a.spErr)
		return
	}
	a.graphOK = true
	sp := a.sp
	legacy := append([]Evidence{{Name: "isLegacyAuthProtocolsEnabled", Value: strconv.FormatBool(sp.LegacyAuth)}},
		factEvidence(FactSharePointIDCRL, a.now)...)
	f := Finding{Check: CheckSharePointLegacyAuth, Evidence: legacy}
	switch {
	case a.profile.Auth != AuthLegacy:
		f.Severity = SeverityOK
		f.Title = "SharePoint's legacy-auth setting does not affect a tool signing in with modern authentication"
		a.add(f)
	case factState(FactSharePointIDCRL, a.now) == StateRetired:
		f.Severity = SeverityBlocker
		f.Title = "SharePoint Online IDCRL (legacy) authentication was retired on 2026-05-01 (MC1184649): no setting can bring the tool's SharePoint sign-ins back"
		f.Fix = capitalize(wayOut(a.profile.Product))
		a.add(f)
	case factState(FactSharePointIDCRL, a.now) == StatePhasingOut:
		// No plan item. Since 2026-02-16 isLegacyAuthProtocolsEnabled (the
		// LegacyAuthProtocolsEnabled switch, the only one Graph has) brings
		// IDCRL back only once Set-SPOTenant
		// -AllowLegacyAuthProtocolsEnabledSetting $true has been run in
		// PowerShell. Graph can neither read nor set that switch, so c2bot
		// cannot tell whether its change would help, cannot verify it, and
		// could only revert half of what an admin turned on; and the
		// window closes for good on 2026-04-30. An admin who takes that
		// step does both switches in PowerShell, and turns both off again.
		f.Severity = SeverityBlocker
		f.Title = "SharePoint Online blocks IDCRL (legacy) authentication by default since 2026-02-16 (MC1184649); Graph cannot re-enable it"
		f.Fix = "Until 2026-04-30 only PowerShell can: Set-SPOTenant -AllowLegacyAuthProtocolsEnabledSetting $true, then Set-SPOTenant -LegacyAuthProtocolsEnabled $true (Graph has no such switch); from 2026-05-01 nothing can. " + capitalize(wayOut(a.profile.Product))
		a.add(f)
	case sp.LegacyAuth:
		f.Severity = SeverityOK
		f.Title = "SharePoint accepts legacy authentication protocols"
		a.add(f)
	default:
		f.Severity = SeverityBlocker
		f.Title = "SharePoint Online refuses legacy authentication protocols"
		f.Fix = "Set isLegacyAuthProtocolsEnabled to true for the window; SharePoint blocks IDCRL by default from 2026-02-16, so " + wayOut(a.profile.Product)
		a.add(f, Item{Kind: KindSharePointLegacyAuth, Before: ValueFalse, After: ValueTrue})
	}

	invited := append([]Evidence{{Name: "isRequireAcceptingUserToMatchInvitedUserEnabled", Value: strconv.FormatBool(sp.InvitedMatch)}},
		factEvidence(FactSharePointInvited, a.now)...)
	if !sp.InvitedMatch {
		a.add(Finding{Check: CheckSharePointInvitedMatch, Severity: SeverityOK,
			Title: "SharePoint does not require the accepting account to match the invited one", Evidence: invited})
		return
	}
	// Information only, never a plan item: the setting is a guest-sharing
	// rule (deprecated with the Entra B2B invitation flow); it does not take
	// part in the tool's sign-in, and relaxing it weakens sharing.
	a.add(Finding{
		Check:    CheckSharePointInvitedMatch,
		Severity: SeverityInfo,
		Title:    "SharePoint requires the accepting account to match the invited one: a deprecated guest-sharing rule that does not affect the tool's sign-in; leave it on",
		Evidence: invited,
	})
}

// caPolicyVerdicts are one policy's verdicts over the tool's sign-ins.
type caPolicyVerdicts struct {
	id, name string
	vs       []CAVerdict
}

// checkConditionalAccess makes one finding per policy that blocks, may block
// or (report-only) would block the tool, and returns the scoped exclusions
// that help today.
func (a *assessment) checkConditionalAccess() []Item {
	switch {
	case a.principalErr != nil:
		a.failed(CheckConditionalAccess, "the tool's "+a.principalName(), a.principalErr)
		return nil
	case a.ca == nil && a.caErr == nil:
		a.add(Finding{Check: CheckConditionalAccess, Severity: SeverityInfo,
			Title: "no tool account or app id given; Conditional Access not evaluated"})
		return nil
	case a.caErr != nil:
		a.failed(CheckConditionalAccess, "Conditional Access", a.caErr)
		return nil
	}
	a.graphOK = true
	ev := a.ca
	var order []*caPolicyVerdicts
	byID := map[string]*caPolicyVerdicts{}
	for _, v := range ev.Verdicts {
		p := byID[v.PolicyID]
		if p == nil {
			p = &caPolicyVerdicts{id: v.PolicyID, name: v.PolicyName}
			byID[v.PolicyID] = p
			order = append(order, p)
		}
		p.vs = append(p.vs, v)
	}
	failedInLog := map[string]bool{}
	if r := a.toolSignIns(); r != nil && r.err == nil {
		for _, g := range r.sum.Failed {
			for _, id := range g.ExplainedBy {
				failedInLog[id] = true
			}
		}
	}
	var items []Item
	reported := 0
	for _, p := range order {
		if it, ok := a.caFinding(p, failedInLog[p.id]); ok {
			reported++
			if it != nil {
				items = append(items, *it)
			}
		}
	}
	if reported == 0 {
		f := Finding{Check: CheckConditionalAccess, Severity: SeverityOK,
			Title:    "No Conditional Access policy blocks the tool's sign-ins",
			Evidence: []Evidence{{Name: "policies evaluated", Value: strconv.Itoa(len(order))}, {Name: "evaluated by", Value: ev.Source}}}
		if ev.WhatIfError != "" {
			f.Evidence = append(f.Evidence, Evidence{Name: "What If unavailable", Value: ev.WhatIfError})
		}
		a.add(f)
	}
	for i := range items {
		items[i].Propagation = items[i].Kind.Propagation()
	}
	return items
}

// checkAppRegistration reports what is wrong with an app tool's own
// registration: no service principal here, or credentials its sign-ins show
// to be wrong. Information for the admin and the vendor; never a plan item.
func (a *assessment) checkAppRegistration() {
	f := Finding{Check: CheckAppRegistration, Evidence: []Evidence{{Name: "app id", Value: a.target.AppID}}}
	if errors.Is(a.principalErr, ErrNotFound) {
		f.Severity = SeverityBlocker
		f.Title = fmt.Sprintf("The tool's app %s has no service principal in this tenant: it cannot sign in (error 700016)", a.target.AppID)
		f.Fix = "Have an admin consent to the tool's app in this tenant (the vendor's onboarding link), then diagnose again"
		a.add(f)
		return
	}
	if r := a.app; r != nil && r.err == nil && !r.lastOK.After(lastFailure(r.sum)) {
		var fixes []string
		for _, g := range r.sum.Failed {
			if why, ok := appRegistrationCodes[g.ErrorCode]; ok {
				f.Evidence = append(f.Evidence, Evidence{Name: fmt.Sprintf("error %d × %d", g.ErrorCode, g.Count), Value: why})
				fixes = append(fixes, why)
			}
		}
		if len(fixes) > 0 {
			f.Severity = SeverityBlocker
			f.Title = "The tool's app registration cannot sign in: " + fixes[0]
			f.Fix = capitalize(strings.Join(fixes, "; "))
			a.add(f)
			return
		}
	}
	if a.principal != nil {
		f.Severity = SeverityOK
		f.Title = fmt.Sprintf("The tool's app has a service principal here (%s)", firstNonEmpty(a.principal.DisplayName, a.principal.ID))
		a.add(f)
	}
}

func (a *assessment) principalName() string {
	if a.profile.Auth == AuthApp {
		return "service principal " + a.target.AppID
	}
	return "account " + a.target.Account
}

func resourceName(app string) string {
	switch app {
	case AppExchangeOnline:
		return "Exchange Online"
	case AppSharePointOnline:
		return "SharePoint Online"
	}
	return app
}

// caFinding grades one policy; ok is false when the policy does not concern
// the tool. The item is the scoped exclusion, when it helps today.
func (a *assessment) caFinding(p *caPolicyVerdicts, failedInLog bool) (*Item, bool) {
	var blocks, may, wouldBlock, open, managed bool
	var where, conds, controls, reasons []string
	state := ""
	for _, v := range p.vs {
		state = v.State
		managed = managed || v.MicrosoftManaged
		hit := false
		switch {
		case v.ReportOnly:
			hit = v.Applies != CAAppliesNo && len(v.Controls) > 0
			wouldBlock = wouldBlock || hit
		case v.Blocks && v.Applies == CAAppliesYes:
			hit, blocks = true, true
		case v.Blocks && v.Applies == CAAppliesMaybe:
			hit, may = true, true
		}
		if !hit {
			continue
		}
		si := CASignIn{Auth: a.profile.Auth, ClientAppType: v.ClientAppType, Application: v.Application}
		if pathOpen(si, a.now) {
			open = true
		}
		w := resourceName(v.Application)
		if v.ClientAppType != "" {
			w += " (" + v.ClientAppType + ")"
		}
		where = appendNew(where, w)
		for _, c := range v.Conditions {
			conds = appendNew(conds, c)
		}
		for _, c := range v.Controls {
			controls = appendNew(controls, c)
		}
		for _, r := range v.Reasons {
			reasons = appendNew(reasons, r)
		}
	}
	if !blocks && !may && !wouldBlock {
		return nil, false
	}
	if may && failedInLog {
		// The sign-in log shows this policy failing the tool's sign-ins:
		// whatever its conditions, it applies.
		blocks = true
	}
	ev := []Evidence{
		{Name: "policy", Value: fmt.Sprintf("%s (%s)", p.name, p.id)},
		{Name: "state", Value: state},
		{Name: "sign-ins", Value: strings.Join(where, ", ")},
	}
	if len(controls) > 0 {
		ev = append(ev, Evidence{Name: "grant controls", Value: strings.Join(controls, ", ")})
	}
	if len(conds) > 0 {
		ev = append(ev, Evidence{Name: "unresolved conditions", Value: strings.Join(conds, ", ")})
	}
	if len(reasons) > 0 {
		ev = append(ev, Evidence{Name: "why", Value: strings.Join(reasons, "; ")})
	}
	ev = append(ev, Evidence{Name: "evaluated by", Value: a.ca.Source})
	if failedInLog {
		ev = append(ev, Evidence{Name: "sign-in log", Value: "this policy failed the tool's sign-ins"})
	}
	who := a.principalLabel()
	f := Finding{Check: CheckConditionalAccess, PolicyID: p.id, Evidence: ev}
	switch {
	case blocks:
		f.Severity = SeverityBlocker
		f.Title = fmt.Sprintf("Conditional Access %q blocks %s on %s", p.name, who, strings.Join(where, ", "))
		a.blockingPolicies = append(a.blockingPolicies, blockingPolicy{id: p.id, controls: controls})
		if !open {
			f.Fix = "Excluding the tool would not help: the sign-in paths this policy blocks are retired by Microsoft; " + wayOut(a.profile.Product)
			a.add(f)
			return nil, true
		}
		if a.principal == nil {
			f.Fix = "Exclude the tool's account from the policy for the window (give the tool account to plan it)"
			a.add(f)
			return nil, true
		}
		it := a.exclusion(p)
		f.Fix = fmt.Sprintf("Exclude %s from %q for the window (scoped: nobody else's sign-ins change)", who, p.name)
		a.add(f)
		return it, true
	case may:
		f.Severity = SeverityWarning
		f.Title = fmt.Sprintf("Conditional Access %q may block %s on %s, depending on %s", p.name, who, strings.Join(where, ", "), strings.Join(conds, ", "))
		f.Fix = "Check the policy's conditions against where the tool signs in from; exclude the tool if its sign-ins fail with this policy"
	case wouldBlock && managed:
		f.Severity = SeverityWarning
		f.Title = fmt.Sprintf("Microsoft-managed Conditional Access %q is report-only and would block %s: Microsoft will switch it on (at least 45 days after it appeared)", p.name, who)
		f.Fix = "Nothing blocks today; before Microsoft switches the policy on, " + wayOut(a.profile.Product) + " or exclude the tool from it"
		f.Evidence = append(f.Evidence, Evidence{Name: "source", Value: SourceCAManaged})
	default:
		f.Severity = SeverityWarning
		f.Title = fmt.Sprintf("Conditional Access %q is report-only: would block %s", p.name, who)
		f.Fix = "Nothing blocks today; exclude the tool before the policy is switched on"
	}
	a.add(f)
	return nil, true
}

func (a *assessment) principalLabel() string {
	if a.principal == nil {
		return "the tool"
	}
	if a.principal.Kind == CAPrincipalServicePrincipal {
		return "the tool's app " + firstNonEmpty(a.principal.DisplayName, a.principal.AppID)
	}
	return firstNonEmpty(a.principal.UserPrincipalName, a.target.Account)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func appendNew(list []string, v string) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// exclusion is the scoped fix for policy p: the tool's user or service
// principal in its exclusions.
func (a *assessment) exclusion(p *caPolicyVerdicts) *Item {
	w := a.principal
	if w.Kind == CAPrincipalServicePrincipal {
		return &Item{Kind: KindCAExcludeServicePrincipal, PolicyID: p.id, PolicyName: p.name,
			ServicePrincipalID: w.ID, AppID: w.AppID, Before: ValueIncluded, After: ValueExcluded}
	}
	return &Item{Kind: KindCAExcludeUser, PolicyID: p.id, PolicyName: p.name,
		UserID: w.ID, UserPrincipalName: firstNonEmpty(w.UserPrincipalName, a.target.Account), Before: ValueIncluded, After: ValueExcluded}
}

// checkSignIns grades the tool's sign-ins and names what explains each
// failed group.
func (a *assessment) checkSignIns(rep *Report) *SignInSummary {
	r := a.toolSignIns()
	if r == nil {
		what := "no tool account given; sign-ins not checked"
		if a.profile.Auth == AuthApp {
			what = "no tool app id given; service-principal sign-ins not checked"
		}
		a.add(Finding{Check: CheckSignIns, Severity: SeverityInfo, Title: what})
		return nil
	}
	if r.err != nil {
		a.failed(CheckSignIns, "sign-ins of "+r.sum.Account, r.err)
		return nil
	}
	a.graphOK = true
	s := r.sum
	s.Failed = slices.Clone(s.Failed)
	for i := range s.Failed {
		s.Failed[i].ExplainedBy = a.explainedBy(s.Failed[i])
	}
	f := signInFinding(s, r.lastOK)
	if s.Total == 0 && s.Unavailable == "" && a.profile.Auth == AuthLegacy && !anyPathOpen(AuthLegacy, a.now) {
		f.Title += ": Exchange and SharePoint refuse retired legacy sign-ins before Entra ID logs them"
	}
	a.add(f)
	return &s
}

// explainedBy names the findings (check ids) and Conditional Access policies
// (ids) that explain a failed group.
func (a *assessment) explainedBy(g SignInGroup) []string {
	out := slices.Clone(g.ExplainedBy) // policies the log says failed them
	sdOn := a.sdErr == nil && a.sd.Enabled
	// policies adds the blocking policies with a control that fails the
	// sign-in with this code, unless the log already named the policies.
	policies := func(match func(control string) bool) {
		if len(g.ExplainedBy) > 0 {
			return
		}
		for _, p := range a.blockingPolicies {
			if slices.ContainsFunc(p.controls, match) {
				out = appendNew(out, p.id)
			}
		}
	}
	legacy := a.profile.Auth == AuthLegacy
	switch g.ErrorCode {
	case 530035:
		out = appendNew(out, CheckSecurityDefaults)
	case 50076, 50079, 50074:
		if sdOn && a.profile.Auth != AuthApp {
			out = appendNew(out, CheckSecurityDefaults)
		}
		policies(func(c string) bool { return c == "mfa" || strings.HasPrefix(c, "authenticationStrength") })
	case 53003, 530032:
		// A legacy client cannot satisfy any grant control: every one fails
		// it like block.
		policies(func(c string) bool { return c == "block" || legacy })
		if g.ErrorCode == 530032 && sdOn {
			out = appendNew(out, CheckSecurityDefaults)
		}
	case 53000, 53001, 53002:
		policies(func(c string) bool { return c != "block" })
	}
	if _, ok := appRegistrationCodes[g.ErrorCode]; ok && a.profile.Auth == AuthApp {
		out = appendNew(out, CheckAppRegistration)
	}
	if a.profile.Auth == AuthLegacy {
		// "Other clients" is IDCRL to SharePoint as well as the Exchange
		// protocols without a name of their own; every other legacy value
		// (Exchange ActiveSync, IMAP4, POP3, …) is Exchange's.
		for _, app := range g.ClientApps {
			if modernClientApps[app] {
				continue
			}
			if app == "Other clients" && factState(FactSharePointIDCRL, a.now) != StateAvailable {
				out = appendNew(out, CheckSharePointLegacyAuth)
			}
			if app != "Other clients" && factState(FactExchangeBasicAuth, a.now) == StateRetired {
				out = appendNew(out, CheckExchangeBasicAuth)
			}
		}
	}
	return out
}

// signInFinding grades a sign-in summary; lastOK is the newest successful
// sign-in (zero if none).
func signInFinding(s SignInSummary, lastOK time.Time) Finding {
	f := Finding{Check: CheckSignIns}
	span := "since " + s.Since.UTC().Format(time.RFC3339)
	switch {
	case s.Unavailable != "":
		f.Severity = SeverityWarning
		f.Title = s.Unavailable
		return f
	case s.Total == 0:
		f.Severity = SeverityInfo
		f.Title = fmt.Sprintf("no sign-ins by %s %s", s.Account, span)
		return f
	case len(s.Failed) == 0:
		f.Severity = SeverityOK
		f.Title = fmt.Sprintf("%d sign-ins by %s %s, all succeeded", s.Total, s.Account, span)
		return f
	}
	failed := s.Total - s.Succeeded
	var lastFail time.Time
	var fixes []string
	for _, g := range s.Failed {
		lastFail = maxTime(lastFail, g.LastSeen)
		f.Evidence = append(f.Evidence, Evidence{
			Name:  fmt.Sprintf("error %d × %d", g.ErrorCode, g.Count),
			Value: fmt.Sprintf("%s (last %s; %s)", g.Explanation, g.LastSeen.UTC().Format(time.RFC3339), strings.Join(g.ClientApps, ", ")),
		})
		fixes = append(fixes, g.Explanation)
	}
	if lastOK.After(lastFail) {
		f.Severity = SeverityWarning
		f.Title = fmt.Sprintf("%d of %d sign-ins by %s failed %s, but the latest succeeded", failed, s.Total, s.Account, span)
		return f
	}
	f.Severity = SeverityBlocker
	f.Title = fmt.Sprintf("%d of %d sign-ins by %s failed %s", failed, s.Total, s.Account, span)
	f.Fix = strings.Join(fixes, "; ")
	return f
}

// SignInVerdict is the finding Diagnose makes of a sign-in summary (used
// when the sign-ins are read again after a change).
func SignInVerdict(s SignInSummary) Finding { return signInFinding(s, s.LastSucceeded) }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkVersion compares the tool's version with the first one that works
// against Exchange Online; it reports whether the version is too old (then
// the answer is the update, not a tenant change).
func (a *assessment) checkVersion() bool {
	r := checkVersion(a.profile.Product, a.profile.Version)
	a.findings = append(a.findings, r.findings...)
	return slices.ContainsFunc(r.findings, func(f Finding) bool { return f.Severity == SeverityBlocker })
}

// checkVersion grades a product and version.
func checkVersion(product, version string) checkResult {
	var r checkResult
	product = strings.ToLower(strings.TrimSpace(product))
	version = strings.TrimSpace(version)
	if product == "" && version == "" {
		return r
	}
	f := Finding{Check: CheckVersion, Evidence: []Evidence{{Name: "product", Value: product}, {Name: "version", Value: version}}}
	want, known := minVersions[product]
	got, err := parseVersion(version)
	switch {
	case !known:
		f.Severity = SeverityWarning
		f.Title = fmt.Sprintf("unknown product %q: give backup or migration", product)
	case err != nil:
		f.Severity = SeverityWarning
		f.Title = fmt.Sprintf("cannot read version %q: %v", version, err)
	case got[0] < want[0] || (got[0] == want[0] && got[1] < want[1]):
		f.Severity = SeverityBlocker
		f.Title = fmt.Sprintf("%s %s is older than %d.%d: update the tool first; a policy change will not fix Exchange Online for this version",
			product, version, want[0], want[1])
		f.Fix = capitalize(wayOut(product))
	default:
		f.Severity = SeverityOK
		f.Title = fmt.Sprintf("%s %s is recent enough (%d.%d or later)", product, version, want[0], want[1])
	}
	r.add(f)
	return r
}

// parseVersion reads "X.Y" (a leading "v" and further parts are allowed).
func parseVersion(v string) ([2]int, error) {
	var out [2]int
	parts := strings.Split(strings.TrimPrefix(strings.ToLower(v), "v"), ".")
	if len(parts) < 2 {
		return out, errors.New("want major.minor")
	}
	for i := range 2 {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return out, errors.New("want major.minor")
		}
		out[i] = n
	}
	return out, nil
}
