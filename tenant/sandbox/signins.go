package sandbox

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sign-in generation: every person signs in on a fixed schedule aligned to
// the Unix epoch; the outcome of each attempt is computed from the tenant
// state in force at (attempt time - Propagation).

const (
	signInRetention = 30 * 24 * time.Hour
	maxSignInPage   = 1000

	legacyClientEAS   = "Exchange ActiveSync"
	legacyClientOther = "Other clients"
	clientBrowser     = "Browser"

	toolAppID             = "4a3c8d2e-1b7f-4e6a-9c5d-2f8e0b1a7c3d"
	failureBlockedByCA    = "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."
	failureMFARequiredFmt = "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'."
)

// ToolAppDisplayName is the appDisplayName of the tool account's sign-ins.
const ToolAppDisplayName = "Backup tool (legacy)"

// Sign-in error codes the tool account's attempts fail with.
const (
	// ErrorCodeBlockedByCA (53003): an enabled Conditional Access policy
	// blocks the attempt's client app for the account.
	ErrorCodeBlockedByCA = 53003
	// ErrorCodeMFARequired (50076): security defaults demand MFA, which a
	// legacy client cannot do.
	ErrorCodeMFARequired = 50076
)

// person is a user the sandbox knows and generates sign-ins for.
type person struct {
	id, upn, name, given, surname string
	every, offset                 time.Duration
	tool                          bool
	appID, appName                string
	resourceID, resourceName      string
}

func (s *Server) people() []person {
	d := s.domain()
	return []person{
		{id: s.opts.ToolAccountID, upn: s.opts.ToolAccount, name: "Backup Service", given: "Backup", surname: "Service",
			every: s.opts.SignInEvery, offset: 7 * time.Second, tool: true, appID: toolAppID, appName: ToolAppDisplayName},
		{id: "87d349ed-44d7-43e1-9a83-5f2406dee5bd", upn: "adelev@" + d, name: "Adele Vance", given: "Adele", surname: "Vance",
			every: 2 * time.Hour, offset: 13 * time.Minute, appID: "1fec8e78-bce4-4aaf-ab1b-5451cc387264", appName: "Microsoft Teams",
			resourceID: "00000003-0000-0000-c000-000000000000", resourceName: "Microsoft Graph"},
		{id: "626cbf8c-5dde-46b0-8385-9e40d64736fe", upn: "meganb@" + d, name: "Megan Bowen", given: "Megan", surname: "Bowen",
			every: 3 * time.Hour, offset: 41 * time.Minute, appID: "00000003-0000-0ff1-ce00-000000000000", appName: "Office 365 SharePoint Online",
			resourceID: "00000003-0000-0ff1-ce00-000000000000", resourceName: "Office 365 SharePoint Online"},
		{id: "3c1e9d7a-57b4-4c8e-9e2f-6a0b1d2c3e4f", upn: "patrick.o'brien@" + d, name: "Patrick O'Brien", given: "Patrick", surname: "O'Brien",
			every: 4 * time.Hour, offset: 67 * time.Minute, appID: "00000002-0000-0ff1-ce00-000000000000", appName: "Office 365 Exchange Online",
			resourceID: "00000002-0000-0ff1-ce00-000000000000", resourceName: "Office 365 Exchange Online"},
	}
}

type signIn struct {
	ID                               string          `json:"id"`
	CreatedDateTime                  string          `json:"createdDateTime"`
	UserDisplayName                  string          `json:"userDisplayName"`
	UserPrincipalName                string          `json:"userPrincipalName"`
	UserID                           string          `json:"userId"`
	AppID                            string          `json:"appId"`
	AppDisplayName                   string          `json:"appDisplayName"`
	IPAddress                        string          `json:"ipAddress"`
	ClientAppUsed                    string          `json:"clientAppUsed"`
	CorrelationID                    string          `json:"correlationId"`
	ConditionalAccessStatus          string          `json:"conditionalAccessStatus"`
	IsInteractive                    bool            `json:"isInteractive"`
	RiskDetail                       string          `json:"riskDetail"`
	RiskLevelAggregated              string          `json:"riskLevelAggregated"`
	RiskLevelDuringSignIn            string          `json:"riskLevelDuringSignIn"`
	RiskState                        string          `json:"riskState"`
	RiskEventTypes                   []string        `json:"riskEventTypes"`
	ResourceDisplayName              string          `json:"resourceDisplayName"`
	ResourceID                       string          `json:"resourceId"`
	Status                           signInStatus    `json:"status"`
	DeviceDetail                     deviceDetail    `json:"deviceDetail"`
	Location                         signInLocation  `json:"location"`
	AppliedConditionalAccessPolicies []appliedPolicy `json:"appliedConditionalAccessPolicies"`

	at  time.Time
	key string // id without dashes, for ordering and skip tokens
}

type signInStatus struct {
	ErrorCode         int     `json:"errorCode"`
	FailureReason     *string `json:"failureReason"`
	AdditionalDetails *string `json:"additionalDetails"`
}

type deviceDetail struct {
	DeviceID        string  `json:"deviceId"`
	DisplayName     *string `json:"displayName"`
	OperatingSystem string  `json:"operatingSystem"`
	Browser         string  `json:"browser"`
	IsCompliant     *bool   `json:"isCompliant"`
	IsManaged       *bool   `json:"isManaged"`
	TrustType       *string `json:"trustType"`
}

type signInLocation struct {
	City            string         `json:"city"`
	State           string         `json:"state"`
	CountryOrRegion string         `json:"countryOrRegion"`
	GeoCoordinates  geoCoordinates `json:"geoCoordinates"`
}

type geoCoordinates struct {
	Altitude  *float64 `json:"altitude"`
	Latitude  float64  `json:"latitude"`
	Longitude float64  `json:"longitude"`
}

type appliedPolicy struct {
	ID                      string   `json:"id"`
	DisplayName             string   `json:"displayName"`
	EnforcedGrantControls   []string `json:"enforcedGrantControls"`
	EnforcedSessionControls []string `json:"enforcedSessionControls"`
	Result                  string   `json:"result"`
}

// clientCovered lists the clientAppTypes values that cover a clientAppUsed.
var clientCovered = map[string][]string{
	legacyClientEAS:   {"all", "exchangeActiveSync", "easSupported"},
	legacyClientOther: {"all", "other"},
	clientBrowser:     {"all", "browser"},
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// policyApplies reports whether p targets user u signing in with client.
func policyApplies(p Policy, userID, client string) bool {
	covers := false
	for _, c := range clientCovered[client] {
		if containsFold(p.ClientAppTypes, c) {
			covers = true
		}
	}
	if !covers || containsFold(p.ExcludeUsers, userID) {
		return false
	}
	return containsFold(p.IncludeUsers, "All") || containsFold(p.IncludeUsers, userID)
}

// outcome evaluates one sign-in against a tenant state.
func outcome(st State, u person, client, resourceID string) (code int, reason *string, caStatus string, applied []appliedPolicy) {
	applied = []appliedPolicy{}
	blocked, enforced := false, false
	for _, p := range st.Policies {
		ap := appliedPolicy{ID: p.ID, DisplayName: p.DisplayName, EnforcedGrantControls: []string{}, EnforcedSessionControls: []string{}}
		applies := policyApplies(p, u.id, client)
		switch p.State {
		case "disabled":
			ap.Result = "notEnabled"
		case "enabledForReportingButNotEnforced":
			ap.Result = "reportOnlyNotApplied"
			if applies && p.Block {
				ap.Result = "reportOnlyFailure"
				ap.EnforcedGrantControls = []string{"Block"}
			}
		default:
			ap.Result = "notApplied"
			if applies && p.Block {
				ap.Result = "failure"
				ap.EnforcedGrantControls = []string{"Block"}
				blocked = true
			} else if applies {
				ap.Result = "success"
				ap.EnforcedGrantControls = []string{"Mfa"}
				enforced = true
			}
		}
		applied = append(applied, ap)
	}
	legacy := client == legacyClientEAS || client == legacyClientOther
	switch {
	case blocked:
		r := failureBlockedByCA
		return ErrorCodeBlockedByCA, &r, "failure", applied
	case legacy && st.SecurityDefaults:
		r := fmt.Sprintf(failureMFARequiredFmt, resourceID)
		return ErrorCodeMFARequired, &r, "notApplied", applied
	case enforced:
		return 0, nil, "success", applied
	}
	return 0, nil, "notApplied", applied
}

// jitter is a stable sub-second offset (100 ns steps) for an attempt.
func jitter(userID string, k int64) time.Duration {
	sum := sha256.Sum256([]byte(userID + "/" + strconv.FormatInt(k, 10)))
	return time.Duration(binary.BigEndian.Uint64(sum[:8])%10_000_000) * 100
}

// generateLocked returns every sign-in created in [from, to].
func (s *Server) generateLocked(from, to time.Time) []signIn {
	var out []signIn
	for _, u := range s.people() {
		step := int64(u.every)
		start := from.UnixNano() - int64(u.offset) - int64(time.Second)
		k := start / step
		if k*step < start {
			k++
		}
		for ; ; k++ {
			at := time.Unix(0, k*step).Add(u.offset + jitter(u.id, k)).UTC()
			if at.After(to) {
				break
			}
			if at.Before(from) {
				continue
			}
			out = append(out, s.signInLocked(u, k, at))
		}
	}
	return out
}

func (s *Server) signInLocked(u person, k int64, at time.Time) signIn {
	nanos := strconv.FormatInt(at.UnixNano(), 10)
	e := signIn{
		ID:                    stableGUID("signIn", u.id, nanos),
		CreatedDateTime:       at.Format(graphTime),
		UserDisplayName:       u.name,
		UserPrincipalName:     u.upn,
		UserID:                u.id,
		AppID:                 u.appID,
		AppDisplayName:        u.appName,
		CorrelationID:         stableGUID("correlation", u.id, nanos),
		IsInteractive:         true,
		RiskDetail:            "none",
		RiskLevelAggregated:   "none",
		RiskLevelDuringSignIn: "none",
		RiskState:             "none",
		RiskEventTypes:        []string{},
		at:                    at,
	}
	e.key = strings.ReplaceAll(e.ID, "-", "")
	var st State
	if u.tool {
		st = s.stateAtLocked(at.Add(-s.opts.Propagation))
		e.ClientAppUsed = legacyClientEAS
		e.ResourceID, e.ResourceDisplayName = "00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"
		if k%2 != 0 {
			e.ClientAppUsed = legacyClientOther
			e.ResourceID, e.ResourceDisplayName = "00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"
		}
		e.IPAddress = "203.0.113.24"
		e.DeviceDetail = deviceDetail{OperatingSystem: "Windows Server 2019", Browser: ""}
		e.Location = signInLocation{City: "Amsterdam", State: "Noord-Holland", CountryOrRegion: "NL",
			GeoCoordinates: geoCoordinates{Latitude: 52.37403, Longitude: 4.88969}}
	} else {
		st = s.stateAtLocked(at)
		e.ClientAppUsed = clientBrowser
		e.ResourceID, e.ResourceDisplayName = u.resourceID, u.resourceName
		e.IPAddress = "198.51.100.77"
		e.DeviceDetail = deviceDetail{OperatingSystem: "Windows 10", Browser: "Edge 120.0.0"}
		e.Location = signInLocation{City: "Redmond", State: "Washington", CountryOrRegion: "US",
			GeoCoordinates: geoCoordinates{Latitude: 47.68050003051758, Longitude: -122.12094116210938}}
	}
	code, reason, caStatus, applied := outcome(st, u, e.ClientAppUsed, e.ResourceID)
	e.Status = signInStatus{ErrorCode: code, FailureReason: reason}
	e.ConditionalAccessStatus = caStatus
	e.AppliedConditionalAccessPolicies = applied
	return e
}

func (e *signIn) stringField(name string) string {
	switch name {
	case "userPrincipalName":
		return e.UserPrincipalName
	case "userId":
		return e.UserID
	case "userDisplayName":
		return e.UserDisplayName
	case "appId":
		return e.AppID
	case "appDisplayName":
		return e.AppDisplayName
	case "clientAppUsed":
		return e.ClientAppUsed
	case "conditionalAccessStatus":
		return e.ConditionalAccessStatus
	case "correlationId":
		return e.CorrelationID
	case "id":
		return e.ID
	case "ipAddress":
		return e.IPAddress
	case "resourceDisplayName":
		return e.ResourceDisplayName
	}
	return ""
}

func (e *signIn) matches(conds []condition) bool {
	for _, c := range conds {
		var ok bool
		switch c.kind {
		case litTime:
			ok = compareTimes(e.at, c.t, c.op)
		case litInt:
			ok = compareInts(int64(e.Status.ErrorCode), c.n, c.op)
		case litBool:
			ok = (e.IsInteractive == c.b) == (c.op == "eq")
		default:
			ok = strings.EqualFold(e.stringField(c.field), c.str) == (c.op == "eq")
		}
		if !ok {
			return false
		}
	}
	return true
}

// newer orders sign-ins newest first, then by id.
func newer(a, b *signIn) bool {
	if !a.at.Equal(b.at) {
		return a.at.After(b.at)
	}
	return a.key > b.key
}

func skipToken(e *signIn) string {
	return fmt.Sprintf("%016x%s", uint64(e.at.UnixNano()), e.key)
}

// parseSkipToken returns a sign-in holding the ordering key of a token.
func parseSkipToken(tok string) (signIn, bool) {
	if len(tok) != 48 {
		return signIn{}, false
	}
	if _, err := hex.DecodeString(tok); err != nil {
		return signIn{}, false
	}
	n, err := strconv.ParseUint(tok[:16], 16, 64)
	if err != nil {
		return signIn{}, false
	}
	return signIn{at: time.Unix(0, int64(n)).UTC(), key: tok[16:]}, true
}

func queryEscape(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}

func (s *Server) listSignIns(w http.ResponseWriter, r *http.Request, ids reqIDs) {
	q := r.URL.Query()
	bad := func(msg string) { s.graphError(w, ids, http.StatusBadRequest, "BadRequest", msg) }

	s.mu.Lock()
	p1 := s.state.P1
	s.mu.Unlock()
	if !p1 {
		s.graphError(w, ids, http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
			"Tenant does not have a SKU required for this feature.")
		return
	}

	filter := q.Get("$filter")
	var conds []condition
	if filter != "" {
		var err error
		if conds, err = parseFilter(filter); err != nil {
			bad("Invalid filter clause: " + err.Error())
			return
		}
	}
	top := maxSignInPage
	if v := q.Get("$top"); v != "" {
		n, ok := queryInt(v)
		if !ok || n > maxSignInPage {
			bad(fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", v, maxSignInPage))
			return
		}
		top = n
	}
	if v := strings.Join(strings.Fields(q.Get("$orderby")), " "); v != "" && !strings.EqualFold(v, "createdDateTime desc") {
		s.graphError(w, ids, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported $orderby: '"+v+"'. Only 'createdDateTime desc' is supported.")
		return
	}
	var after *signIn
	if tok := q.Get("$skiptoken"); tok != "" {
		e, ok := parseSkipToken(tok)
		if !ok {
			bad("Invalid $skiptoken value.")
			return
		}
		after = &e
	}

	now := s.opts.Now().UTC()
	from, to := now.Add(-signInRetention), now
	for _, c := range conds {
		if c.kind != litTime {
			continue
		}
		switch c.op {
		case "ge", "gt", "eq":
			if c.t.After(from) {
				from = c.t
			}
		}
		switch c.op {
		case "le", "lt", "eq":
			if c.t.Before(to) {
				to = c.t
			}
		}
	}

	var all []signIn
	if !from.After(to) {
		s.mu.Lock()
		all = s.generateLocked(from, to)
		s.mu.Unlock()
	}
	matched := all[:0]
	for i := range all {
		if all[i].matches(conds) && (after == nil || newer(after, &all[i])) {
			matched = append(matched, all[i])
		}
	}
	sort.Slice(matched, func(i, j int) bool { return newer(&matched[i], &matched[j]) })

	page := matched
	out := orderedObject{{"@odata.context", s.context("auditLogs/signIns")}}
	if len(matched) > top {
		page = matched[:top]
		next := "$top=" + strconv.Itoa(top) + "&$skiptoken=" + skipToken(&page[len(page)-1])
		if filter != "" {
			next = "$filter=" + queryEscape(filter) + "&" + next
		}
		out = append(out, field{"@odata.nextLink", s.url + "/v1.0/auditLogs/signIns?" + next})
	}
	if page == nil {
		page = []signIn{}
	}
	out = append(out, field{"value", page})
	writeJSON(w, http.StatusOK, out)
}
