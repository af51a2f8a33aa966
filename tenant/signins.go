package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/microsoftgraph/msgraph-sdk-go/auditlogs"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// Sign-in paging bounds.
const (
	signInPageSize = 200
	// maxSignIns bounds how many entries are read (newest first).
	maxSignIns = 1000
	// maxUPN bounds an account name (Entra ID allows 113 characters before
	// the @ and 256 for the domain).
	maxUPN = 400
)

// explanations says in plain words what the sign-in error codes a backup or
// migration tool gets mean, after Microsoft's list
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
var explanations = map[int]string{
	530035:  "blocked by Security defaults (BlockedBySecurityDefaults): legacy authentication, or a sign-in Security defaults deem unsafe",
	530032:  "blocked by a security policy of the tenant (BlockedByConditionalAccessOnSecurityPolicy)",
	53003:   "blocked by Conditional Access (BlockedByConditionalAccess)",
	53000:   "Conditional Access requires a compliant device (DeviceNotCompliant)",
	53001:   "Conditional Access requires a domain-joined device (DeviceNotDomainJoined)",
	53002:   "Conditional Access requires an approved client app (ApplicationUsedIsNotAnApprovedApp)",
	50076:   "MFA required (UserStrongAuthClientAuthNRequired): a tool signing in with a password cannot do MFA (Security defaults or a Conditional Access policy demand it)",
	50079:   "MFA registration required (UserStrongAuthEnrollmentRequired): legacy protocols and password-only tools cannot do MFA (Security defaults or a Conditional Access policy demand it)",
	50074:   "strong authentication required (UserStrongAuthClientAuthNRequiredInterrupt)",
	50126:   "invalid user name or password (InvalidUserNameOrPassword)",
	50053:   "account locked (too many failed attempts) or sign-in from a blocked IP address (IdsLocked)",
	50057:   "account disabled (UserDisabled)",
	50055:   "password expired (InvalidPasswordExpiredPassword)",
	50034:   "user not found in this tenant (UserAccountNotFound)",
	65001:   "consent missing: the app has not been granted the permission (DelegationDoesNotExist)",
	7000215: "invalid client secret: the tool's app registration sent a wrong secret (use the secret's value, not its id)",
	7000218: "client secret or assertion missing from the request (InvalidClientCredentials)",
	7000222: "the tool's app registration secret has expired (InvalidClientSecretExpiredKeysProvided)",
	700016:  "application not found in this tenant (UnauthorizedClient_DoesNotMatchRequest): the app id is wrong or the app was not consented here",
	700027:  "client assertion failed signature validation: the tool's certificate is not the one registered",
	7000112: "the tool's application is disabled (UnauthorizedClientApplicationDisabled)",
}

// Explain returns a plain-language explanation of an Entra ID sign-in error
// code, or a pointer to Microsoft's lookup page for codes it does not know.
func Explain(code int) string {
	if s, ok := explanations[code]; ok {
		return s
	}
	return fmt.Sprintf("see https://login.microsoftonline.com/error?code=%d", code)
}

// odataString quotes s as an OData string literal: a ' inside is doubled.
func odataString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// signInFilter is the $filter for the account's sign-ins since a time.
func signInFilter(account string, since time.Time) string {
	return fmt.Sprintf("createdDateTime ge %s and userPrincipalName eq %s",
		since.UTC().Format(time.RFC3339), odataString(account))
}

func checkAccount(account string) error {
	if account == "" {
		return errors.New("account is required")
	}
	if len(account) > maxUPN {
		return errors.New("account name too long")
	}
	if strings.IndexFunc(account, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return errors.New("account name has spaces or control characters")
	}
	return nil
}

// SignIns summarises the account's sign-ins since the given time (zero means
// 24 hours ago), reading at most 1000 of the newest. When the log cannot be
// read for lack of permission or licence (403), the summary says so in
// Unavailable and the error is nil.
func (c *Client) SignIns(ctx context.Context, account string, since time.Time) (SignInSummary, error) {
	s, _, err := c.signIns(ctx, account, since)
	return s, err
}

func (c *Client) signIns(ctx context.Context, account string, since time.Time) (SignInSummary, time.Time, error) {
	if since.IsZero() {
		since = c.now().Add(-defaultSince)
	}
	sum := SignInSummary{Account: account, Since: since.UTC()}
	if err := checkAccount(account); err != nil {
		return sum, time.Time{}, fmt.Errorf("sign-ins: %w", err)
	}
	return c.readSignIns(ctx, sum, nil, signInFilter(account, since))
}

// ServicePrincipalSignIns summarises the sign-ins of the app appID with its
// own credentials (service-principal sign-ins) since the given time (zero
// means 24 hours ago). Graph serves those only on beta:
// GET /beta/auditLogs/signIns?$filter=signInEventTypes/any(t: t eq
// 'servicePrincipal'), through the same client and middleware. A 403 is
// reported in Unavailable, as for SignIns.
func (c *Client) ServicePrincipalSignIns(ctx context.Context, appID string, since time.Time) (SignInSummary, error) {
	s, _, err := c.servicePrincipalSignIns(ctx, appID, since)
	return s, err
}

func (c *Client) servicePrincipalSignIns(ctx context.Context, appID string, since time.Time) (SignInSummary, time.Time, error) {
	if since.IsZero() {
		since = c.now().Add(-defaultSince)
	}
	sum := SignInSummary{Account: appID, Since: since.UTC()}
	if !guidPattern.MatchString(appID) {
		return sum, time.Time{}, errors.New("service principal sign-ins: the app id must be a GUID")
	}
	first := c.betaURL("/auditLogs/signIns", url.Values{
		"$filter": {servicePrincipalSignInFilter(appID, since)},
		"$top":    {strconv.Itoa(signInPageSize)},
	})
	return c.readSignIns(ctx, sum, &first, "")
}

// guidPattern is an object or application id.
var guidPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// servicePrincipalSignInFilter is the beta $filter for an app's
// service-principal sign-ins since a time.
func servicePrincipalSignInFilter(appID string, since time.Time) string {
	return fmt.Sprintf("createdDateTime ge %s and appId eq %s and signInEventTypes/any(t: t eq 'servicePrincipal')",
		since.UTC().Format(time.RFC3339), odataString(appID))
}

// betaURL is the Graph beta URL of path with query q, derived from the
// configured Graph URL (same scheme and host, so the token and the paging
// check apply as for v1.0).
func (c *Client) betaURL(path string, q url.Values) string {
	u := *c.graphBase
	u.Path = strings.TrimSuffix(u.Path, "/v1.0") + "/beta" + path
	// OData wants %20, not +, for spaces.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// readSignIns pages through /auditLogs/signIns: with filter on v1.0, or from
// first (an absolute URL, the beta endpoint) when it is set.
func (c *Client) readSignIns(ctx context.Context, sum SignInSummary, first *string, filter string) (SignInSummary, time.Time, error) {
	var entries []models.SignInable
	err := c.call(ctx, "read sign-ins", func(ctx context.Context) error {
		top := int32(signInPageSize)
		cfg := &auditlogs.SignInsRequestBuilderGetRequestConfiguration{
			QueryParameters: &auditlogs.SignInsRequestBuilderGetQueryParameters{Filter: &filter, Top: &top},
		}
		b := auditlogs.NewAuditLogsRequestBuilderInternal(c.pathParams(), c.adapter).SignIns()
		if first != nil {
			b, cfg = b.WithUrl(*first), nil
		}
		for len(entries) < maxSignIns {
			res, err := b.Get(ctx, cfg)
			if err != nil {
				return err
			}
			entries = append(entries, res.GetValue()...)
			next := deref(res.GetOdataNextLink())
			if next == "" {
				return nil
			}
			if err := c.checkLink(next); err != nil {
				return err
			}
			b, cfg = b.WithUrl(next), nil
		}
		return nil
	})
	if err != nil {
		if IsForbidden(err) {
			ge := AsGraphError(err)
			sum.Unavailable = fmt.Sprintf("cannot read sign-ins: %s: needs AuditLog.Read.All + Directory.Read.All and an Entra ID P1 licence", ge.Code)
			return sum, time.Time{}, nil
		}
		return sum, time.Time{}, err
	}
	if len(entries) > maxSignIns {
		entries = entries[:maxSignIns]
	}
	sum, lastOK := summarize(sum, entries)
	sum.LastSucceeded = lastOK.UTC()
	if lastOK.IsZero() {
		sum.LastSucceeded = time.Time{}
	}
	return sum, lastOK, nil
}

// summarize groups failed sign-ins by error code; it also returns the time
// of the newest successful one.
func summarize(sum SignInSummary, entries []models.SignInable) (SignInSummary, time.Time) {
	type group struct {
		SignInGroup
		apps     map[string]bool
		ca       map[string]bool
		policies map[string]bool
		reasonAt time.Time
	}
	groups := map[int]*group{}
	var lastOK time.Time
	for _, e := range entries {
		if e == nil {
			continue
		}
		sum.Total++
		if app := deref(e.GetClientAppUsed()); app != "" {
			if sum.clientApps == nil {
				sum.clientApps = map[string]int{}
			}
			sum.clientApps[app]++
		}
		at := deref(e.GetCreatedDateTime())
		code := 0
		reason := ""
		if st := e.GetStatus(); st != nil {
			code = int(deref(st.GetErrorCode()))
			reason = deref(st.GetFailureReason())
		}
		if code == 0 {
			sum.Succeeded++
			lastOK = maxTime(lastOK, at)
			if sum.FirstSucceeded.IsZero() || at.Before(sum.FirstSucceeded) {
				sum.FirstSucceeded = at.UTC()
			}
			continue
		}
		g := groups[code]
		if g == nil {
			g = &group{SignInGroup: SignInGroup{ErrorCode: code, Explanation: Explain(code)},
				apps: map[string]bool{}, ca: map[string]bool{}, policies: map[string]bool{}}
			groups[code] = g
		}
		g.Count++
		if reason != "" && (g.FailureReason == "" || at.After(g.reasonAt)) {
			g.FailureReason, g.reasonAt = reason, at
		}
		if app := deref(e.GetClientAppUsed()); app != "" {
			g.apps[app] = true
		}
		if ca := e.GetConditionalAccessStatus(); ca != nil {
			g.ca[ca.String()] = true
		}
		for _, ap := range e.GetAppliedConditionalAccessPolicies() {
			// "failure": an enforced policy whose grant the sign-in did not
			// satisfy; report-only results never fail a sign-in.
			if ap != nil && ap.GetResult() != nil && *ap.GetResult() == models.FAILURE_APPLIEDCONDITIONALACCESSPOLICYRESULT {
				if id := deref(ap.GetId()); id != "" {
					g.policies[id] = true
				}
			}
		}
		g.LastSeen = maxTime(g.LastSeen, at)
	}
	for _, g := range groups {
		g.ClientApps = sortedKeys(g.apps)
		g.CAStatus = strings.Join(sortedKeys(g.ca), ", ")
		if len(g.policies) > 0 {
			g.ExplainedBy = sortedKeys(g.policies)
		}
		g.LastSeen = g.LastSeen.UTC()
		sum.Failed = append(sum.Failed, g.SignInGroup)
	}
	slices.SortFunc(sum.Failed, func(a, b SignInGroup) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return a.ErrorCode - b.ErrorCode
	})
	return sum, lastOK
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
