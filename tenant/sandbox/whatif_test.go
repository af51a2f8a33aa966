package sandbox

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// docSPPolicy is the policy of Example 4 of
// https://learn.microsoft.com/graph/api/conditionalaccessroot-evaluate.
func docSPPolicy() Policy {
	return Policy{
		ID: "461478d2-5896-4761-84ba-4d241c396a29", DisplayName: "All ST SPs_All resources_Any location_Block",
		State: "enabledForReportingButNotEnforced", ClientAppTypes: []string{"all"},
		IncludeUsers: []string{"None"}, ExcludeUsers: []string{},
		PolicyMore: PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}, IncludeLocations: []string{"All"}, Grant: []string{"block"}},
	}
}

func TestWhatIfDocumentedExample(t *testing.T) {
	s := startNoThrottle(t, Options{Initial: &State{P1: true, Policies: []Policy{docSPPolicy()}}})
	if err := s.AddServicePrincipal(ServicePrincipal{ID: "0e6d5a6c-1b0b-4e8f-9d51-3b2f0c9a7e11", AppID: "c65b94a5-0049-439a-a6fd-bce307077730", DisplayName: "Doc app"}); err != nil {
		t.Fatal(err)
	}
	tok := token(t, s)
	r := call(t, s, http.MethodPost, "/identity/conditionalAccess/evaluate", tok, fixture(t, "whatif_evaluate_sp_request.json"))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := r.json(t)
	value, _ := got["value"].([]any)
	if len(value) != 1 {
		t.Fatalf("value %v", got["value"])
	}
	item := value[0].(map[string]any)
	if item["policyApplies"] != true || item["analysisReasons"] != "notSet" {
		t.Errorf("policyApplies %v analysisReasons %v", item["policyApplies"], item["analysisReasons"])
	}
	// Every key the sandbox sends is one Graph sends (the documented answer
	// has more, all null or empty in the example).
	want := decode(t, fixture(t, "whatif_evaluate_sp_200.json"))
	if _, extra := diffKeys(got, want); len(extra) > 0 {
		t.Errorf("keys Graph does not send: %v", extra)
	}
	for _, k := range []string{"value.[].conditions.clientApplications.includeServicePrincipals", "value.[].conditions.locations.includeLocations", "value.[].grantControls.builtInControls", "value.[].displayName", "value.[].state"} {
		if !keyPaths(got, "", nil)[k] {
			t.Errorf("answer lacks %s", k)
		}
	}

	// Without the location, What If cannot evaluate the condition: the
	// policy does not apply, for reason location.
	req := decode(t, fixture(t, "whatif_evaluate_sp_request.json")).(map[string]any)
	delete(req["signInConditions"].(map[string]any), "country")
	delete(req["signInConditions"].(map[string]any), "ipAddress")
	req["appliedPoliciesOnly"] = false
	body, _ := json.Marshal(req)
	r = call(t, s, http.MethodPost, "/identity/conditionalAccess/evaluate", tok, body)
	item = r.json(t)["value"].([]any)[0].(map[string]any)
	if item["policyApplies"] != false || item["analysisReasons"] != "location" {
		t.Errorf("no location: policyApplies %v analysisReasons %v (%s)", item["policyApplies"], item["analysisReasons"], body)
	}
}

func TestWhatIfUsersAndErrors(t *testing.T) {
	const (
		group, parent = "a1000000-0000-4000-8000-000000000001", "a1000000-0000-4000-8000-000000000002"
		exchangeAdmin = "29232cdf-9323-42fd-ade2-1d097af3e4de"
	)
	nested := Policy{ID: "c0000000-0000-4000-8000-000000000001", DisplayName: "MFA for all staff", State: "enabled",
		ClientAppTypes: []string{"all"}, PolicyMore: PolicyMore{IncludeGroups: []string{parent}}}
	roleExcluded := Policy{ID: "c0000000-0000-4000-8000-000000000002", DisplayName: "Block legacy except Exchange admins", State: "enabled",
		ClientAppTypes: []string{"exchangeActiveSync", "other"}, IncludeUsers: []string{"All"}, Block: true,
		PolicyMore: PolicyMore{ExcludeRoles: []string{exchangeAdmin}}}
	off := Policy{ID: "c0000000-0000-4000-8000-000000000003", DisplayName: "Off", State: "disabled", IncludeUsers: []string{"All"}}
	s := startNoThrottle(t, Options{Initial: &State{P1: true, Policies: []Policy{nested, roleExcluded, off}}})
	for _, err := range []error{s.AddGroup(group, "Backup accounts"), s.AddGroup(parent, "All staff"),
		s.AddMember(parent, group), s.AddMember(group, DefaultToolAccountID)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	tok := token(t, s)
	ask := func(client string) map[string]map[string]any {
		t.Helper()
		body := `{"signInIdentity":{"@odata.type":"#microsoft.graph.userSignIn","userId":"` + DefaultToolAccountID + `"},` +
			`"signInContext":{"@odata.type":"#microsoft.graph.applicationContext","includeApplications":["00000002-0000-0ff1-ce00-000000000000"]},` +
			`"signInConditions":{"clientAppType":"` + client + `"},"appliedPoliciesOnly":false}`
		r := call(t, s, http.MethodPost, "/identity/conditionalAccess/evaluate", tok, []byte(body))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		out := map[string]map[string]any{}
		for _, v := range r.json(t)["value"].([]any) {
			m := v.(map[string]any)
			out[m["displayName"].(string)] = m
		}
		return out
	}
	got := ask("other")
	if got["MFA for all staff"]["policyApplies"] != true {
		t.Errorf("nested group: %v", got["MFA for all staff"])
	}
	if got["Block legacy except Exchange admins"]["policyApplies"] != true {
		t.Errorf("role not held, legacy client: %v", got["Block legacy except Exchange admins"])
	}
	if _, ok := got["Off"]; ok {
		t.Error("a disabled policy was evaluated")
	}
	if r := ask("mobileAppsAndDesktopClients")["Block legacy except Exchange admins"]; r["analysisReasons"] != "clientApps" {
		t.Errorf("modern client: %v", r)
	}
	if err := s.AddRoleHolder(exchangeAdmin, "Exchange Administrator", group); err != nil {
		t.Fatal(err)
	}
	if r := ask("other")["Block legacy except Exchange admins"]; r["policyApplies"] != false || r["analysisReasons"] != "users" {
		t.Errorf("role held through a group: %v", r)
	}

	for name, body := range map[string]string{
		"no identity":    `{"signInContext":{"@odata.type":"#microsoft.graph.applicationContext","includeApplications":["x"]}}`,
		"no context":     `{"signInIdentity":{"@odata.type":"#microsoft.graph.userSignIn","userId":"` + DefaultToolAccountID + `"}}`,
		"unknown user":   `{"signInIdentity":{"@odata.type":"#microsoft.graph.userSignIn","userId":"a9999999-0000-4000-8000-000000000000"},"signInContext":{"@odata.type":"#microsoft.graph.applicationContext","includeApplications":["x"]}}`,
		"unknown client": `{"signInIdentity":{"@odata.type":"#microsoft.graph.userSignIn","userId":"` + DefaultToolAccountID + `"},"signInContext":{"@odata.type":"#microsoft.graph.applicationContext","includeApplications":["x"]},"signInConditions":{"clientAppType":"fax"}}`,
		"not json":       `{`,
	} {
		r := call(t, s, http.MethodPost, "/identity/conditionalAccess/evaluate", tok, []byte(body))
		if r.status != http.StatusBadRequest || graphErrorCode(t, r) != "BadRequest" {
			t.Errorf("%s: status %d %s", name, r.status, r.body)
		}
	}
	if r := call(t, s, http.MethodGet, "/identity/conditionalAccess/evaluate", tok, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", r.status)
	}
}

func TestTransitiveMemberOf(t *testing.T) {
	s := startNoThrottle(t, Options{})
	const group, parent, role = "a1000000-0000-4000-8000-000000000001", "a1000000-0000-4000-8000-000000000002", "62e90394-69f5-4237-9190-012177145e10"
	for _, err := range []error{s.AddGroup(group, "Backup accounts"), s.AddGroup(parent, "All staff"),
		s.AddMember(parent, group), s.AddMember(group, DefaultToolAccountID), s.AddRoleHolder(role, "Global Administrator", DefaultToolAccountID),
		s.SetUserType(DefaultToolAccountID, "Guest")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddGroup(group, "again"); err == nil {
		t.Error("duplicate group accepted")
	}
	tok := token(t, s)
	r := call(t, s, http.MethodGet, "/users/"+DefaultToolAccount+"/transitiveMemberOf?$top=2", tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	page := r.json(t)
	next, _ := page["@odata.nextLink"].(string)
	if len(page["value"].([]any)) != 2 || !strings.HasPrefix(next, s.URL()+"/v1.0/") {
		t.Fatalf("first page %v", page)
	}
	r = call(t, s, http.MethodGet, next, tok, nil)
	page2 := r.json(t)
	if len(page2["value"].([]any)) != 1 || page2["@odata.nextLink"] != nil {
		t.Fatalf("second page %v", page2)
	}
	kinds := map[string]map[string]any{}
	for _, v := range append(page["value"].([]any), page2["value"].([]any)...) {
		m := v.(map[string]any)
		kinds[m["displayName"].(string)] = m
	}
	if kinds["All staff"]["@odata.type"] != "#microsoft.graph.group" || kinds["Global Administrator"]["roleTemplateId"] != role {
		t.Errorf("members %v", kinds)
	}
	if r := call(t, s, http.MethodGet, "/users/"+DefaultToolAccountID+"/transitiveMemberOf?$top=1000", tok, nil); r.status != http.StatusBadRequest {
		t.Errorf("$top=1000: %d", r.status)
	}
	if r := call(t, s, http.MethodGet, "/users/nobody@contoso.onmicrosoft.com/transitiveMemberOf", tok, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown user: %d", r.status)
	}
	u := call(t, s, http.MethodGet, "/users/"+DefaultToolAccount+"?$select=id,userType", tok, nil).json(t)
	if u["userType"] != "Guest" || u["id"] != DefaultToolAccountID {
		t.Errorf("user %v", u)
	}
}

func TestServicePrincipalByAppID(t *testing.T) {
	s := startNoThrottle(t, Options{})
	sp := ServicePrincipal{ID: "b2000000-0000-4000-8000-000000000001", AppID: "b2000000-0000-4000-8000-0000000000a1", DisplayName: "Backup"}
	if err := s.AddServicePrincipal(sp); err != nil {
		t.Fatal(err)
	}
	if err := s.AddServicePrincipal(sp); err == nil {
		t.Error("duplicate app accepted")
	}
	tok := token(t, s)
	r := call(t, s, http.MethodGet, "/servicePrincipals(appId='"+sp.AppID+"')?$select=id,appId,appOwnerOrganizationId", tok, nil)
	got := r.json(t)
	if r.status != http.StatusOK || got["id"] != sp.ID || got["appOwnerOrganizationId"] != DefaultTenantID || got["displayName"] != nil {
		t.Errorf("status %d %v", r.status, got)
	}
	if r := call(t, s, http.MethodGet, "/servicePrincipals(appId='b2000000-0000-4000-8000-0000000000ff')", tok, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown app: %d", r.status)
	}
}

// TestPatchServicePrincipalExclusion: the scoped fix for an app tool puts
// its service principal in excludeServicePrincipals; What If then leaves it
// out, and a malformed id changes nothing.
func TestPatchServicePrincipalExclusion(t *testing.T) {
	p := docSPPolicy()
	p.IncludeLocations = nil
	s := startNoThrottle(t, Options{Initial: &State{P1: true, Policies: []Policy{p}}})
	sp := ServicePrincipal{ID: "b2000000-0000-4000-8000-000000000001", AppID: "b2000000-0000-4000-8000-0000000000a1", DisplayName: "Backup"}
	if err := s.AddServicePrincipal(sp); err != nil {
		t.Fatal(err)
	}
	covers := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.policyCoversLocked(s.state.Policies[0], "", sp.AppID, "00000003-0000-0ff1-ce00-000000000000", "", "")
	}
	if !covers() {
		t.Fatal("the policy does not cover the service principal")
	}
	tok := token(t, s)
	patch := func(ids string) int {
		body := `{"conditions":{"clientApplications":{"includeServicePrincipals":["ServicePrincipalsInMyTenant"],"excludeServicePrincipals":[` + ids + `]}}}`
		return call(t, s, http.MethodPatch, "/identity/conditionalAccess/policies/"+p.ID, tok, []byte(body)).status
	}
	if st := patch(`"not-a-guid"`); st != http.StatusBadRequest || !covers() {
		t.Errorf("malformed id: status %d", st)
	}
	if st := patch(`"` + sp.ID + `"`); st != http.StatusNoContent || covers() {
		t.Errorf("exclusion: status %d, covers %v", st, covers())
	}
	got := call(t, s, http.MethodGet, "/identity/conditionalAccess/policies/"+p.ID, tok, nil).json(t)
	ex := got["conditions"].(map[string]any)["clientApplications"].(map[string]any)["excludeServicePrincipals"].([]any)
	if len(ex) != 1 || ex[0] != sp.ID {
		t.Errorf("read back %v", ex)
	}
}
