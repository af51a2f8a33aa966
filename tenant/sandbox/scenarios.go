package sandbox

import (
	"fmt"
	"strings"
	"time"
)

// Scenario is a ready-made sandbox tenant for `c2bot demo --scenario` and
// `c2bot diagnose --sandbox --scenario`: a tenant state, the directory
// objects it needs (groups, service principals) and the tool that signs in
// to it.
type Scenario struct {
	Name        string
	Description string
	// ToolAuth is how the scenario's tool signs in (ToolLegacy,
	// ToolDelegated, ToolApp); ToolAppID its app registration (ToolApp).
	// Product and Version are its profile as c2bot settings would give
	// them (empty: not configured).
	ToolAuth, ToolAppID string
	Product, Version    string
	// Date is the day the scenario is about when it is not today (the
	// vendor's case as it was in 2025); zero for today. The sandbox follows
	// whatever clock the caller passes: pass ClockFrom(Date) (to the
	// sandbox and to the Graph client alike) to see it as it was.
	Date time.Time

	state func() State
	setup func(*Server) error
}

// DefaultScenario is `demo`'s: a delegated tool blocked by Security defaults,
// where a temporary change still helps today.
const DefaultScenario = "security-defaults"

// Object ids of the scenarios' directory.
const (
	// BackupOperatorsGroupID contains NestedGroupID, which contains the
	// tool account (mfa-nested-group).
	BackupOperatorsGroupID = "3f2e1d0c-5b4a-4c3d-9e8f-7a6b5c4d3e2f"
	NestedGroupID          = "8e7d6c5b-4a39-4281-b0c1-d2e3f4a5b6c7"
	// ToolServicePrincipalID is the tool app's service principal
	// (workload-identity).
	ToolServicePrincipalID = "7d1c3b2a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	// MFAPolicyID and WorkloadPolicyID are the scenarios' blocking policies.
	MFAPolicyID      = "b6a5c4d3-e2f1-4a0b-9c8d-7e6f5a4b3c2d"
	WorkloadPolicyID = "c7b6a5d4-e3f2-4b1a-8d9c-0e1f2a3b4c5d"
	// DevicePolicyID and DeviceOrMFAPolicyID are mfa-policies' other
	// blocking policies (with DefaultPolicyID).
	DevicePolicyID      = "d8c7b6a5-f4e3-4c2b-9e0d-1f2a3b4c5d6e"
	DeviceOrMFAPolicyID = "e9d8c7b6-a5f4-4d3c-8f1e-2a3b4c5d6e7f"
)

// vendorState is the tenant of the vendor's knowledge-base article: Security
// defaults on, SharePoint legacy auth off, invited-account match on, a
// report-only "block legacy authentication" policy.
func vendorState() State { return DefaultState() }

var scenarios = []Scenario{
	{
		Name:        "vendor-2025",
		Description: "the vendor's case as it was on 2025-12-01: a legacy tool; Security defaults on, SharePoint legacy auth off (turning both around still helps then)",
		ToolAuth:    ToolLegacy, Product: "backup",
		Date:  time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC),
		state: vendorState,
	},
	{
		Name:        "vendor-today",
		Description: "the same tenant today: Microsoft has retired the legacy paths; the answer is to update the tool, no change helps",
		ToolAuth:    ToolLegacy, Product: "backup",
		state: vendorState,
	},
	{
		Name:        "mfa-nested-group",
		Description: "a delegated tool blocked by an MFA policy that reaches its account through a nested group; the fix is the scoped exclusion",
		ToolAuth:    ToolDelegated, Product: "backup", Version: "2.4",
		state: func() State {
			st := DefaultState()
			st.SecurityDefaults, st.InvitedMatch = false, false
			st.Policies = []Policy{{
				ID: MFAPolicyID, DisplayName: "Require MFA for backup operators", State: "enabled",
				ClientAppTypes: []string{"all"}, IncludeUsers: []string{}, ExcludeUsers: []string{},
				PolicyMore: PolicyMore{IncludeGroups: []string{BackupOperatorsGroupID}, Grant: []string{"mfa"}},
			}}
			return st
		},
		setup: func(s *Server) error {
			return firstErr(
				s.AddGroup(BackupOperatorsGroupID, "Backup operators"),
				s.AddGroup(NestedGroupID, "Backup service accounts"),
				s.AddMember(BackupOperatorsGroupID, NestedGroupID),
				s.AddMember(NestedGroupID, s.opts.ToolAccountID),
			)
		},
	},
	{
		Name:        DefaultScenario,
		Description: "a delegated tool (modern auth with a password) blocked by Security defaults' MFA requirement; turning Security defaults off is the only change that helps",
		ToolAuth:    ToolDelegated, Product: "backup", Version: "2.4",
		state: func() State {
			st := DefaultState()
			st.Policies = nil
			return st
		},
	},
	{
		Name:        "workload-identity",
		Description: "an app-registration tool blocked by a workload-identity policy; the fix is excluding its service principal",
		ToolAuth:    ToolApp, ToolAppID: DefaultToolAppID, Product: "backup", Version: "2.4",
		state: func() State {
			st := DefaultState()
			st.SecurityDefaults, st.InvitedMatch = false, false
			st.Policies = []Policy{{
				ID: WorkloadPolicyID, DisplayName: "Block workload identities", State: "enabled",
				IncludeUsers: []string{"None"}, Block: true,
				PolicyMore: PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}},
			}}
			return st
		},
		setup: func(s *Server) error {
			return s.AddServicePrincipal(ServicePrincipal{ID: ToolServicePrincipalID, AppID: s.opts.ToolAppID, DisplayName: ToolAppDisplayName})
		},
	},
	{
		Name:        "conditional-access",
		Description: "a delegated tool blocked by an enforced MFA policy for all users; the fix is the scoped exclusion",
		ToolAuth:    ToolDelegated, Product: "backup", Version: "2.4",
		state: func() State {
			st := DefaultState()
			st.SecurityDefaults, st.InvitedMatch = false, false
			st.Policies = []Policy{allUsersMFA()}
			return st
		},
	},
	{
		// Three enabled policies from Microsoft's templates, each of which
		// blocks the tool on its own, so the plan excludes its account from
		// all three:
		// https://learn.microsoft.com/entra/identity/conditional-access/howto-conditional-access-policy-all-users-mfa
		// https://learn.microsoft.com/entra/identity/conditional-access/policy-all-users-device-compliance
		// https://learn.microsoft.com/entra/identity/conditional-access/policy-alt-all-users-compliant-hybrid-or-mfa
		// (a server-run tool has neither a compliant nor a hybrid-joined
		// device, nor a second factor).
		Name:        "mfa-policies",
		Description: "a delegated tool blocked by three enforced policies for all users (MFA, compliant device, compliant or hybrid device or MFA); the fix excludes it from each",
		ToolAuth:    ToolDelegated, Product: "backup", Version: "2.4",
		state: func() State {
			st := DefaultState()
			st.SecurityDefaults, st.InvitedMatch = false, false
			st.Policies = []Policy{
				allUsersMFA(),
				allUsersPolicy(DevicePolicyID, "Require a compliant device for all users",
					PolicyMore{Grant: []string{"compliantDevice"}}),
				allUsersPolicy(DeviceOrMFAPolicyID, "Require a compliant or hybrid joined device or multifactor authentication for all users",
					PolicyMore{Grant: []string{"mfa", "compliantDevice", "domainJoinedDevice"}, GrantOperator: "OR"}),
			}
			return st
		},
	},
	{
		Name:        "clean",
		Description: "nothing blocks the tool (a delegated tool; no Security defaults, no policy in its way)",
		ToolAuth:    ToolDelegated, Product: "backup", Version: "2.4",
		state: func() State {
			st := DefaultState()
			st.SecurityDefaults, st.LegacyAuth, st.InvitedMatch = false, true, false
			st.Policies[0].State = "disabled"
			return st
		},
	},
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Scenarios lists the scenarios in the order `demo --help` shows them.
func Scenarios() []Scenario { return append([]Scenario(nil), scenarios...) }

// ScenarioNames is the scenario names, comma-separated.
func ScenarioNames() string {
	names := make([]string, len(scenarios))
	for i, sc := range scenarios {
		names[i] = sc.Name
	}
	return strings.Join(names, ", ")
}

// FindScenario returns the named scenario.
func FindScenario(name string) (Scenario, bool) {
	for _, sc := range scenarios {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scenario{}, false
}

// State is the scenario's initial tenant state.
func (sc Scenario) State() State { return sc.state() }

// Options returns opts with the scenario's initial state and tool.
func (sc Scenario) Options(opts Options) Options {
	st := sc.state()
	opts.Initial = &st
	opts.ToolAuth = sc.ToolAuth
	if sc.ToolAppID != "" {
		opts.ToolAppID = sc.ToolAppID
	}
	return opts
}

// StartScenario starts the sandbox in the named scenario: opts with the
// scenario's state and tool (Scenario.Options), and its directory objects.
// The error names the known scenarios when name is not one.
func StartScenario(name string, opts Options) (*Server, Scenario, error) {
	sc, ok := FindScenario(name)
	if !ok {
		return nil, Scenario{}, fmt.Errorf("unknown scenario %q (known: %s)", name, ScenarioNames())
	}
	s, err := Start(sc.Options(opts))
	if err != nil {
		return nil, sc, err
	}
	if sc.setup != nil {
		if err := sc.setup(s); err != nil {
			_ = s.Close()
			return nil, sc, fmt.Errorf("sandbox scenario %s: %w", name, err)
		}
	}
	return s, sc, nil
}

// ClockFrom is a clock that starts at start and runs with the wall clock; a
// zero start gives time.Now.
func ClockFrom(start time.Time) func() time.Time {
	if start.IsZero() {
		return time.Now
	}
	t0 := time.Now()
	return func() time.Time { return start.Add(time.Since(t0)) }
}

// allUsersPolicy is an enabled policy of Microsoft's templates' shape: all
// users, every client app, nobody excluded, with grant controls more.
func allUsersPolicy(id, name string, more PolicyMore) Policy {
	return Policy{ID: id, DisplayName: name, State: "enabled",
		ClientAppTypes: []string{"all"}, IncludeUsers: []string{"All"}, ExcludeUsers: []string{}, PolicyMore: more}
}

// allUsersMFA is the template policy that requires MFA for all users.
func allUsersMFA() Policy {
	return allUsersPolicy(DefaultPolicyID, "Require multifactor authentication for all users", PolicyMore{Grant: []string{"mfa"}})
}
