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

// Check ids, in the order findings are reported.
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

// checkResult is what one check contributes to a report.
type checkResult struct {
	findings []Finding
	plan     []Item
	// graphErrs are the Graph failures the check turned into findings;
	// graphOK is set when at least one Graph read succeeded.
	graphErrs []error
	graphOK   bool
	signIns   *SignInSummary
}

func (r *checkResult) add(f Finding, items ...Item) {
	r.findings = append(r.findings, f)
	r.plan = append(r.plan, items...)
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

// Diagnose runs every check concurrently and returns the findings and the
// change plan. A check that cannot run becomes a finding; an error is
// returned only when nothing could be read at all (bad credentials), and then
// it wraps ErrAuthentication or a 401 GraphError.
func (c *Client) Diagnose(ctx context.Context, t Target) (Report, error) {
	now := c.now()
	since := t.Since
	if since <= 0 {
		since = defaultSince
	}
	checks := []func(context.Context) checkResult{
		c.checkSecurityDefaults,
		c.checkSharePoint,
		func(ctx context.Context) checkResult { return c.checkConditionalAccess(ctx, t.Account) },
		func(ctx context.Context) checkResult { return c.checkSignIns(ctx, t.Account, now.Add(-since)) },
		func(context.Context) checkResult { return checkVersion(t.Product, t.Version) },
	}
	results := make([]checkResult, len(checks))
	var g errgroup.Group
	for i, check := range checks {
		g.Go(func() error {
			results[i] = check(ctx)
			return nil
		})
	}
	_ = g.Wait()

	rep := Report{TenantID: c.cfg.TenantID, CheckedAt: now}
	var errs []error
	anyRead := false
	for _, r := range results {
		rep.Findings = append(rep.Findings, r.findings...)
		rep.Plan = append(rep.Plan, r.plan...)
		errs = append(errs, r.graphErrs...)
		anyRead = anyRead || r.graphOK
		if r.signIns != nil {
			rep.SignIns = *r.signIns
		}
	}
	if !anyRead && len(errs) > 0 && !slices.ContainsFunc(errs, func(err error) bool { return !IsAuthError(err) }) {
		return Report{}, fmt.Errorf("diagnose: %w", errs[0])
	}
	rep.Findings = append(rep.Findings, c.permissionFindings(ctx, rep.Plan)...)
	return rep, nil
}

func (c *Client) checkSecurityDefaults(ctx context.Context) checkResult {
	var r checkResult
	sd, err := c.getSecurityDefaults(ctx)
	if err != nil {
		r.failed(CheckSecurityDefaults, "Security defaults", err)
		return r
	}
	r.graphOK = true
	evidence := []Evidence{
		{Name: "isEnabled", Value: strconv.FormatBool(sd.Enabled)},
		{Name: "policy", Value: strings.TrimSpace(sd.Name + " " + sd.ID)},
	}
	if !sd.Enabled {
		r.add(Finding{Check: CheckSecurityDefaults, Severity: SeverityOK,
			Title: "Security defaults are off", Evidence: evidence})
		return r
	}
	r.add(Finding{
		Check:    CheckSecurityDefaults,
		Severity: SeverityBlocker,
		Title:    "Security defaults are on: legacy authentication is blocked tenant-wide",
		Evidence: evidence,
		Fix: "Turn Security defaults off for the window (tenant-wide: basic auth opens for every user) " +
			"— or move to Conditional Access and exclude the tool's account",
	}, Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
	return r
}

// checkSharePoint serves both SharePoint checks from one read.
func (c *Client) checkSharePoint(ctx context.Context) checkResult {
	var r checkResult
	sp, err := c.getSharepointSettings(ctx)
	if err != nil {
		r.failed(CheckSharePointLegacyAuth, "SharePoint settings", err)
		return r
	}
	r.graphOK = true
	legacy := []Evidence{{Name: "isLegacyAuthProtocolsEnabled", Value: strconv.FormatBool(sp.LegacyAuth)}}
	if sp.LegacyAuth {
		r.add(Finding{Check: CheckSharePointLegacyAuth, Severity: SeverityOK,
			Title: "SharePoint accepts legacy authentication protocols", Evidence: legacy})
	} else {
		r.add(Finding{
			Check:    CheckSharePointLegacyAuth,
			Severity: SeverityBlocker,
			Title:    "SharePoint Online refuses legacy authentication protocols",
			Evidence: legacy,
			Fix:      "Set isLegacyAuthProtocolsEnabled to true for the window",
		}, Item{Kind: KindSharePointLegacyAuth, Before: ValueFalse, After: ValueTrue})
	}
	invited := []Evidence{{Name: "isRequireAcceptingUserToMatchInvitedUserEnabled", Value: strconv.FormatBool(sp.InvitedMatch)}}
	if !sp.InvitedMatch {
		r.add(Finding{Check: CheckSharePointInvitedMatch, Severity: SeverityOK,
			Title: "SharePoint does not require the accepting account to match the invited one", Evidence: invited})
	} else {
		// The vendor's procedure lists this change as required.
		r.add(Finding{
			Check:    CheckSharePointInvitedMatch,
			Severity: SeverityBlocker,
			Title:    "SharePoint requires the accepting account to match the invited account",
			Evidence: invited,
			Fix:      "Set isRequireAcceptingUserToMatchInvitedUserEnabled to false for the window",
		}, Item{Kind: KindSharePointInvitedMatch, Before: ValueTrue, After: ValueFalse})
	}
	return r
}

func (c *Client) checkConditionalAccess(ctx context.Context, account string) checkResult {
	var r checkResult
	var userID string
	if account != "" {
		id, err := c.lookupUser(ctx, account)
		if err != nil {
			r.failed(CheckConditionalAccess, "the tool account "+account, err)
		} else {
			userID = id
			r.graphOK = true
		}
	}
	pols, err := c.listCAPolicies(ctx)
	if err != nil {
		r.failed(CheckConditionalAccess, "Conditional Access", err)
		return r
	}
	r.graphOK = true
	evalCA(&r, pols, account, userID)
	return r
}

// blocksLegacyAuth reports whether p blocks access and targets legacy
// authentication clients.
func blocksLegacyAuth(p caPolicy) bool {
	if !slices.Contains(p.BuiltInControls, "block") {
		return false
	}
	return slices.ContainsFunc(p.ClientAppTypes, func(v string) bool {
		return v == "exchangeActiveSync" || v == "other" || v == "all"
	})
}

// appliesToApps is false for a policy whose applications condition selects
// nothing ("None", or no application at all).
func appliesToApps(p caPolicy) bool {
	return slices.ContainsFunc(p.IncludeApplications, func(v string) bool { return !strings.EqualFold(v, "None") })
}

// evalCA grades the Conditional Access policies for the tool account
// (account/userID may be empty: then policies are reported without a plan
// item).
func evalCA(r *checkResult, pols []caPolicy, account, userID string) {
	considered := 0
	for _, p := range pols {
		if p.State == "disabled" || !blocksLegacyAuth(p) || !appliesToApps(p) {
			continue
		}
		considered++
		reportOnly := p.State == "enabledForReportingButNotEnforced"
		all := containsID(p.IncludeUsers, "All")
		direct := userID != "" && containsID(p.IncludeUsers, userID)
		excluded := userID != "" && containsID(p.ExcludeUsers, userID)
		viaGroup := len(p.IncludeGroups) > 0 || len(p.IncludeRoles) > 0
		ev := []Evidence{
			{Name: "policy", Value: fmt.Sprintf("%s (%s)", p.Name, p.ID)},
			{Name: "state", Value: p.State},
			{Name: "clientAppTypes", Value: strings.Join(p.ClientAppTypes, ", ")},
			{Name: "grantControls", Value: strings.Join(p.BuiltInControls, ", ")},
			{Name: "includeUsers", Value: strings.Join(p.IncludeUsers, ", ")},
		}
		if len(p.IncludeGroups) > 0 || len(p.IncludeRoles) > 0 {
			ev = append(ev, Evidence{Name: "includeGroups/Roles", Value: strconv.Itoa(len(p.IncludeGroups) + len(p.IncludeRoles))})
		}
		if len(p.ExcludeGroups) > 0 || len(p.ExcludeRoles) > 0 {
			ev = append(ev, Evidence{Name: "excludeGroups/Roles (not resolved)", Value: strconv.Itoa(len(p.ExcludeGroups) + len(p.ExcludeRoles))})
		}
		f := Finding{Check: CheckConditionalAccess, Evidence: ev}
		switch {
		case excluded:
			f.Severity = SeverityOK
			f.Title = fmt.Sprintf("Conditional Access %q blocks legacy authentication but excludes %s", p.Name, account)
			r.add(f)
		case (all || direct) && reportOnly:
			f.Severity = SeverityInfo
			f.Title = fmt.Sprintf("Conditional Access %q is report-only: would block legacy authentication", p.Name)
			f.Fix = "Nothing now; exclude the tool's account before the policy is switched on"
			r.add(f)
		case (all || direct) && userID != "":
			f.Severity = SeverityBlocker
			f.Title = fmt.Sprintf("Conditional Access %q blocks legacy authentication for %s", p.Name, account)
			f.Fix = fmt.Sprintf("Exclude %s from %q for the window (scoped: nobody else's sign-ins change)", account, p.Name)
			r.add(f, Item{Kind: KindCAExcludeUser, PolicyID: p.ID, PolicyName: p.Name,
				UserID: userID, UserPrincipalName: account, Before: ValueIncluded, After: ValueExcluded})
		case all:
			f.Severity = SeverityBlocker
			f.Title = fmt.Sprintf("Conditional Access %q blocks legacy authentication for all users", p.Name)
			f.Fix = "Exclude the tool's account from the policy for the window (give the account to plan it)"
			r.add(f)
		case viaGroup:
			f.Severity = SeverityWarning
			if reportOnly {
				f.Severity = SeverityInfo
			}
			who := "the tool's account"
			if account != "" {
				who = account
			}
			f.Title = fmt.Sprintf("Conditional Access %q blocks legacy authentication and may cover %s through a group or role; not resolved", p.Name, who)
			f.Fix = "Check the policy's groups and roles; exclude the tool's account if it is a member"
			r.add(f)
		case userID == "" && len(p.IncludeUsers) > 0 && !containsID(p.IncludeUsers, "None"):
			f.Severity = SeverityWarning
			f.Title = fmt.Sprintf("Conditional Access %q blocks legacy authentication for some users; the tool account was not checked", p.Name)
			r.add(f)
		default:
			considered--
		}
	}
	if considered == 0 {
		r.add(Finding{
			Check:    CheckConditionalAccess,
			Severity: SeverityOK,
			Title:    "No Conditional Access policy blocks legacy authentication for the tool's account",
			Evidence: []Evidence{{Name: "policies", Value: strconv.Itoa(len(pols))}},
		})
	}
}

func (c *Client) checkSignIns(ctx context.Context, account string, since time.Time) checkResult {
	var r checkResult
	if account == "" {
		r.add(Finding{Check: CheckSignIns, Severity: SeverityInfo, Title: "no tool account given; sign-ins not checked"})
		return r
	}
	s, lastOK, err := c.signIns(ctx, account, since)
	if err != nil {
		r.failed(CheckSignIns, "sign-ins of "+account, err)
		return r
	}
	r.graphOK = true
	r.signIns = &s
	r.add(signInFinding(s, lastOK))
	return r
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
// against Exchange Online.
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
		f.Fix = fmt.Sprintf("Update the %s tool to %d.%d or later", product, want[0], want[1])
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
