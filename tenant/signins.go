package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// explanations says in plain words what the common sign-in error codes mean
// for a tool signing in with legacy authentication.
var explanations = map[int]string{
	50076:   "MFA required: legacy protocols cannot do MFA (Security defaults or a Conditional Access policy demand it)",
	50079:   "MFA registration required: legacy protocols cannot do MFA (Security defaults or a Conditional Access policy demand it)",
	53003:   "blocked by Conditional Access",
	50126:   "invalid user name or password",
	50053:   "account locked (too many failed attempts)",
	50057:   "account disabled",
	50055:   "password expired",
	50034:   "user not found in this tenant",
	65001:   "consent missing: the app has not been granted the permission",
	7000218: "client secret or assertion missing from the request",
	700016:  "application not found in this tenant",
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
	var entries []models.SignInable
	err := c.call(ctx, "read sign-ins", func(ctx context.Context) error {
		filter := signInFilter(account, since)
		top := int32(signInPageSize)
		cfg := &auditlogs.SignInsRequestBuilderGetRequestConfiguration{
			QueryParameters: &auditlogs.SignInsRequestBuilderGetQueryParameters{Filter: &filter, Top: &top},
		}
		b := auditlogs.NewAuditLogsRequestBuilderInternal(c.pathParams(), c.adapter).SignIns()
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
		reasonAt time.Time
	}
	groups := map[int]*group{}
	var lastOK time.Time
	for _, e := range entries {
		if e == nil {
			continue
		}
		sum.Total++
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
				apps: map[string]bool{}, ca: map[string]bool{}}
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
		g.LastSeen = maxTime(g.LastSeen, at)
	}
	for _, g := range groups {
		g.ClientApps = sortedKeys(g.apps)
		g.CAStatus = strings.Join(sortedKeys(g.ca), ", ")
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
