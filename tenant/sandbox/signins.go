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

// Sign-in error codes the tool's attempts fail with, as Entra ID logs them
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
const (
	// ErrorCodeBlockedByCA (53003, BlockedByConditionalAccess): an enforced
	// policy blocks the attempt, or requires a grant control a legacy client
	// cannot satisfy (any of them).
	ErrorCodeBlockedByCA = 53003
	// ErrorCodeMFARequired (50076, UserStrongAuthClientAuthNRequired): MFA
	// is required (Security defaults, or a policy requiring MFA or an
	// authentication strength) and the tool signs in with a password only.
	ErrorCodeMFARequired = 50076
	// ErrorCodeBlockedBySecurityDefaults (530035,
	// BlockedBySecurityDefaults): Security defaults block legacy
	// authentication.
	ErrorCodeBlockedBySecurityDefaults = 530035
	// ErrorCodeDeviceNotCompliant (53000), ErrorCodeDeviceNotDomainJoined
	// (53001), ErrorCodeAppNotApproved (53002): device and app grant
	// controls a password-only tool cannot satisfy.
	ErrorCodeDeviceNotCompliant    = 53000
	ErrorCodeDeviceNotDomainJoined = 53001
	ErrorCodeAppNotApproved        = 53002
	// ErrorCodeAppNotFound (700016): the tool's application has no service
	// principal in the tenant.
	ErrorCodeAppNotFound = 700016
)

// Microsoft's dates, as the sandbox applies them to the tool's legacy
// sign-ins (its own copy: the sandbox plays Microsoft, it does not ask
// c2bot).
var (
	// exchangeBasicAuthOff: Exchange Online basic auth permanently off
	// (https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/deprecation-of-basic-authentication-exchange-online).
	exchangeBasicAuthOff = time.Date(2022, 10, 1, 0, 0, 0, 0, time.UTC)
	// idcrlBlockedByDefault / idcrlRetired: SharePoint IDCRL, MC1184649.
	idcrlBlockedByDefault = time.Date(2026, 2, 16, 0, 0, 0, 0, time.UTC)
	idcrlRetired          = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
)

// How the sandbox's tool signs in (Options.ToolAuth).
const (
	ToolLegacy    = "legacy"    // basic auth to Exchange (EAS), IDCRL to SharePoint
	ToolDelegated = "delegated" // modern auth as the tool account with its password
	ToolApp       = "app"       // its own app registration (client credentials)
)

// DefaultToolAppID is the tool's application id (Options.ToolAppID).
const DefaultToolAppID = toolAppID

const (
	clientMobileDesktop = "Mobile Apps and Desktop clients"
	resourceExchange    = "00000002-0000-0ff1-ce00-000000000000"
	resourceSharePoint  = "00000003-0000-0ff1-ce00-000000000000"
	failureBlockedBySD  = "Access has been blocked by security defaults. This is due to the request using legacy auth or being deemed unsafe by security defaults policies."
	failureAppNotFound  = "Application with identifier '%s' was not found in the directory '%s'."
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
	// Beta only: the kind of sign-in, and the service principal of a
	// service-principal sign-in.
	SignInEventTypes     []string `json:"signInEventTypes,omitempty"`
	ServicePrincipalID   string   `json:"servicePrincipalId,omitempty"`
	ServicePrincipalName string   `json:"servicePrincipalName,omitempty"`

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

// clientAppType is the Conditional Access client app type of a
// clientAppUsed value.
func clientAppType(clientAppUsed string) string {
	switch clientAppUsed {
	case legacyClientEAS:
		return "exchangeActiveSync"
	case legacyClientOther:
		return "other"
	case clientBrowser:
		return "browser"
	case clientMobileDesktop:
		return "mobileAppsAndDesktopClients"
	}
	return ""
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// attempt is one sign-in to evaluate.
type attempt struct {
	who      signInIdentity
	client   string // clientAppUsed; "" for a service principal
	resource string
	// password: the tool signs in with a password only, so it can satisfy
	// no grant control (MFA, device, app, terms of use).
	password bool
	legacy   bool
	country  string
	ip       string
}

// grantCode is the error a password-only sign-in gets for a policy's grant
// controls: a legacy client cannot satisfy any of them, so it is blocked
// like block (53003); a modern one is asked for MFA (50076) or a device or
// app it does not have (53000, 53001, 53002).
func grantCode(controls []string, legacy bool, authStrength string) int {
	if legacy || containsFold(controls, "block") {
		return ErrorCodeBlockedByCA
	}
	switch {
	case containsFold(controls, "mfa") || authStrength != "":
		return ErrorCodeMFARequired
	case containsFold(controls, "compliantDevice"):
		return ErrorCodeDeviceNotCompliant
	case containsFold(controls, "domainJoinedDevice"):
		return ErrorCodeDeviceNotDomainJoined
	case containsFold(controls, "approvedApplication") || containsFold(controls, "compliantApplication"):
		return ErrorCodeAppNotApproved
	}
	return ErrorCodeBlockedByCA
}

func enforcedName(controls []string, authStrength string) []string {
	out := []string{}
	for _, c := range controls {
		out = append(out, strings.ToUpper(c[:1])+c[1:])
	}
	if authStrength != "" {
		out = append(out, "AuthenticationStrength")
	}
	return out
}

// outcomeLocked evaluates one sign-in against a tenant state: Conditional
// Access as What If does (the same rules, with the attempt's client app and
// location), then Security defaults.
func (s *Server) outcomeLocked(st State, a attempt) (code int, reason *string, caStatus string, applied []appliedPolicy) {
	applied = []appliedPolicy{}
	blockCode, enforced := 0, false
	cond := signInConditions{ClientAppType: clientAppType(a.client), Country: a.country, IPAddress: a.ip}
	for _, p := range st.Policies {
		ap := appliedPolicy{ID: p.ID, DisplayName: p.DisplayName, EnforcedGrantControls: []string{}, EnforcedSessionControls: []string{}}
		if p.State == "disabled" {
			ap.Result = "notEnabled"
			applied = append(applied, ap)
			continue
		}
		applies := s.whatIfLocked(p, a.who, []string{a.resource}, cond) == ""
		controls := policyGrant(p)
		fails := applies && (a.password || containsFold(controls, "block"))
		switch {
		case p.State == "enabledForReportingButNotEnforced" && !applies:
			ap.Result = "reportOnlyNotApplied"
		case p.State == "enabledForReportingButNotEnforced":
			ap.Result = map[bool]string{true: "reportOnlyFailure", false: "reportOnlySuccess"}[fails]
			ap.EnforcedGrantControls = enforcedName(controls, p.AuthStrength)
		case !applies:
			ap.Result = "notApplied"
		case fails:
			ap.Result = "failure"
			ap.EnforcedGrantControls = enforcedName(controls, p.AuthStrength)
			if c := grantCode(controls, a.legacy, p.AuthStrength); blockCode == 0 || c == ErrorCodeBlockedByCA {
				blockCode = c
			}
		default:
			ap.Result = "success"
			ap.EnforcedGrantControls = enforcedName(controls, p.AuthStrength)
			enforced = true
		}
		applied = append(applied, ap)
	}
	switch {
	case blockCode == ErrorCodeBlockedByCA:
		r := failureBlockedByCA
		return blockCode, &r, "failure", applied
	case blockCode != 0:
		r := fmt.Sprintf(failureMFARequiredFmt, a.resource)
		if blockCode != ErrorCodeMFARequired {
			r = failureBlockedByCA
		}
		return blockCode, &r, "failure", applied
	case a.who.sp == nil && a.legacy && st.SecurityDefaults:
		// Security defaults block legacy authentication
		// (https://learn.microsoft.com/entra/fundamentals/security-defaults).
		r := failureBlockedBySD
		return ErrorCodeBlockedBySecurityDefaults, &r, "notApplied", applied
	case a.who.sp == nil && a.password && st.SecurityDefaults:
		// ... and require MFA, which a password-only tool cannot do. They do
		// not touch an app signing in with its own credentials.
		r := fmt.Sprintf(failureMFARequiredFmt, a.resource)
		return ErrorCodeMFARequired, &r, "notApplied", applied
	case enforced:
		return 0, nil, "success", applied
	}
	return 0, nil, "notApplied", applied
}

// sharePointAcceptsIDCRL reports whether SharePoint Online takes an IDCRL
// (legacy) sign-in at t in state st (MC1184649): before 2026-02-16 when
// isLegacyAuthProtocolsEnabled is on; until 2026-04-30 only when the
// PowerShell-only AllowLegacyAuthProtocolsEnabledSetting is on as well;
// never from 2026-05-01, whatever is set.
func sharePointAcceptsIDCRL(st State, t time.Time) bool {
	switch {
	case !t.Before(idcrlRetired):
		return false
	case !t.Before(idcrlBlockedByDefault):
		return st.LegacyAuth && st.AllowLegacyAuthProtocolsEnabledSetting
	}
	return st.LegacyAuth
}

// jitter is a stable sub-second offset (100 ns steps) for an attempt.
func jitter(userID string, k int64) time.Duration {
	sum := sha256.Sum256([]byte(userID + "/" + strconv.FormatInt(k, 10)))
	return time.Duration(binary.BigEndian.Uint64(sum[:8])%10_000_000) * 100
}

// generateLocked returns every sign-in created in [from, to].
func (s *Server) generateLocked(from, to time.Time) []signIn {
	s.dir.init()
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
			if e, ok := s.signInLocked(u, k, at); ok {
				out = append(out, e)
			}
		}
	}
	return out
}

// signInLocked is attempt k of person u at time at; ok is false when the
// attempt leaves no Entra ID sign-in: the tool's legacy attempts that the
// service refuses before any authentication (Exchange basic auth once it is
// off; IDCRL while SharePoint does not accept it). That is the sandbox's
// model of a retired path: the attempts vanish from the log and never
// succeed, whatever is PATCHed.
func (s *Server) signInLocked(u person, k int64, at time.Time) (signIn, bool) {
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
		SignInEventTypes:      []string{"interactiveUser"},
		at:                    at,
	}
	e.key = strings.ReplaceAll(e.ID, "-", "")
	a := attempt{who: signInIdentity{userID: u.id, guest: s.userTypeLocked(u.id) == "Guest"}}
	var st State
	if u.tool {
		st = s.stateAtLocked(at.Add(-s.opts.Propagation))
		e.IPAddress = "203.0.113.24"
		e.DeviceDetail = deviceDetail{OperatingSystem: "Windows Server 2019", Browser: ""}
		e.Location = signInLocation{City: "Amsterdam", State: "Noord-Holland", CountryOrRegion: "NL",
			GeoCoordinates: geoCoordinates{Latitude: 52.37403, Longitude: 4.88969}}
		a.country, a.ip = "NL", e.IPAddress
		e.ResourceID, e.ResourceDisplayName = resourceExchange, "Office 365 Exchange Online"
		if k%2 != 0 {
			e.ResourceID, e.ResourceDisplayName = resourceSharePoint, "Office 365 SharePoint Online"
		}
		a.resource = e.ResourceID
		switch s.opts.ToolAuth {
		case ToolApp:
			return s.servicePrincipalSignInLocked(e, st, a)
		case ToolDelegated:
			e.ClientAppUsed = clientMobileDesktop
			a.password = true
		default:
			a.password, a.legacy = true, true
			if e.ResourceID == resourceExchange {
				e.ClientAppUsed = legacyClientEAS
				if !at.Before(exchangeBasicAuthOff) {
					return e, false
				}
			} else {
				e.ClientAppUsed = legacyClientOther
				if !sharePointAcceptsIDCRL(st, at) {
					return e, false
				}
			}
		}
	} else {
		st = s.stateAtLocked(at)
		e.ClientAppUsed = clientBrowser
		e.ResourceID, e.ResourceDisplayName = u.resourceID, u.resourceName
		e.IPAddress = "198.51.100.77"
		e.DeviceDetail = deviceDetail{OperatingSystem: "Windows 10", Browser: "Edge 120.0.0"}
		e.Location = signInLocation{City: "Redmond", State: "Washington", CountryOrRegion: "US",
			GeoCoordinates: geoCoordinates{Latitude: 47.68050003051758, Longitude: -122.12094116210938}}
		a.country, a.ip, a.resource = "US", e.IPAddress, e.ResourceID
	}
	a.client = e.ClientAppUsed
	code, reason, caStatus, applied := s.outcomeLocked(st, a)
	e.Status = signInStatus{ErrorCode: code, FailureReason: reason}
	e.ConditionalAccessStatus = caStatus
	e.AppliedConditionalAccessPolicies = applied
	return e, true
}

// servicePrincipalSignInLocked makes the app tool's attempt a
// service-principal sign-in (Graph beta serves those, filtered on
// signInEventTypes): 700016 when its application has no service principal
// here; else workload-identity Conditional Access decides (53003 when a
// policy blocks it). Security defaults do not apply to it.
func (s *Server) servicePrincipalSignInLocked(e signIn, st State, a attempt) (signIn, bool) {
	appID := s.opts.ToolAppID
	e.SignInEventTypes = []string{"servicePrincipal"}
	e.IsInteractive = false
	e.AppID, e.AppDisplayName = appID, ToolAppDisplayName
	e.UserDisplayName, e.UserPrincipalName, e.UserID = "", "", ""
	e.ClientAppUsed = ""
	var sp *ServicePrincipal
	for _, v := range s.dir.sps {
		if strings.EqualFold(v.AppID, appID) {
			v := v
			sp = &v
		}
	}
	if sp == nil {
		r := fmt.Sprintf(failureAppNotFound, appID, s.opts.TenantID)
		e.Status = signInStatus{ErrorCode: ErrorCodeAppNotFound, FailureReason: &r}
		e.ConditionalAccessStatus = "notApplied"
		e.AppliedConditionalAccessPolicies = []appliedPolicy{}
		return e, true
	}
	e.ServicePrincipalID, e.ServicePrincipalName = sp.ID, sp.DisplayName
	e.AppDisplayName = sp.DisplayName
	a.who = signInIdentity{sp: sp, spInHome: sp.AppOwnerTenantID == "" || strings.EqualFold(sp.AppOwnerTenantID, s.opts.TenantID)}
	code, reason, caStatus, applied := s.outcomeLocked(st, a)
	e.Status = signInStatus{ErrorCode: code, FailureReason: reason}
	e.ConditionalAccessStatus = caStatus
	e.AppliedConditionalAccessPolicies = applied
	return e, true
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
			if c.op == "any" {
				if c.str == "" { // v1.0: user sign-ins, never a service principal's
					ok = !containsFold(e.SignInEventTypes, "servicePrincipal")
				} else {
					ok = containsFold(e.SignInEventTypes, c.str)
				}
				break
			}
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

// listSignIns serves GET /v1.0/auditLogs/signIns and /beta/auditLogs/signIns.
// v1.0 lists user sign-ins; beta lists interactive user sign-ins unless the
// filter asks for signInEventTypes/any(t: t eq '…') (servicePrincipal,
// nonInteractiveUser, …), as Graph beta does
// (https://learn.microsoft.com/graph/api/signin-list?view=graph-rest-beta).
func (s *Server) listSignIns(w http.ResponseWriter, r *http.Request, ids reqIDs, beta bool) {
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
	eventFilter := false
	for _, c := range conds {
		if c.field == "signInEventTypes" {
			eventFilter = true
		}
	}
	if eventFilter && !beta {
		bad("Invalid filter clause: could not find a property named 'signInEventTypes' on type 'microsoft.graph.signIn'")
		return
	}
	if !eventFilter {
		// Without the filter, user sign-ins only.
		conds = append(conds, condition{field: "signInEventTypes", op: "any", kind: litString, str: "interactiveUser"})
		if !beta {
			conds[len(conds)-1].str = "" // v1.0: every user sign-in (below)
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
	if !beta {
		for i := range page {
			page[i].SignInEventTypes, page[i].ServicePrincipalID, page[i].ServicePrincipalName = nil, "", ""
		}
	}
	version := "v1.0"
	if beta {
		version = "beta"
	}
	out := orderedObject{{"@odata.context", s.url + "/" + version + "/$metadata#auditLogs/signIns"}}
	if len(matched) > top {
		page = matched[:top]
		next := "$top=" + strconv.Itoa(top) + "&$skiptoken=" + skipToken(&page[len(page)-1])
		if filter != "" {
			next = "$filter=" + queryEscape(filter) + "&" + next
		}
		out = append(out, field{"@odata.nextLink", s.url + "/" + version + "/auditLogs/signIns?" + next})
	}
	if page == nil {
		page = []signIn{}
	}
	out = append(out, field{"value", page})
	writeJSON(w, http.StatusOK, out)
}
