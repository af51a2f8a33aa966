package tenant

import (
	"regexp"
	"slices"
	"testing"
)

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Every permission the table names, in any AnyOf, has an id, so a
// registration for any selection of features can be written.
func TestEveryPermissionHasAnAppRoleID(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range Permissions {
		for _, p := range n.AnyOf {
			id, ok := AppRoleID(p)
			if !ok {
				t.Errorf("%s (%s) has no app role id", p, n.Feature)
				continue
			}
			if !guid.MatchString(id) {
				t.Errorf("%s: id %q is not a GUID", p, id)
			}
			if seen[id] && appRoleIDs[p] != id {
				t.Errorf("id %s used twice", id)
			}
			seen[id] = true
		}
	}
	ids := map[string]string{}
	for name, id := range appRoleIDs {
		if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share id %s", name, other, id)
		}
		ids[id] = name
	}
}

func TestRegistrationFor(t *testing.T) {
	all, err := RegistrationFor(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all.Permissions, RequiredPermissions()) {
		t.Errorf("all features = %v, want RequiredPermissions %v", all.Permissions, RequiredPermissions())
	}
	ro, err := RegistrationFor(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ro.Permissions {
		if regexp.MustCompile(`ReadWrite`).MatchString(p) {
			t.Errorf("read-only registration grants %s", p)
		}
	}
	sd, err := RegistrationFor([]string{"security-defaults"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sd.Permissions, []string{"Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"}) {
		t.Errorf("security-defaults = %v", sd.Permissions)
	}
	if _, err := RegistrationFor([]string{"mail"}, false); err == nil {
		t.Error("unknown feature accepted")
	}
	rra, err := all.RequiredResourceAccess()
	if err != nil {
		t.Fatal(err)
	}
	if len(rra) != 1 || rra[0].ResourceAppID != GraphAppID || len(rra[0].ResourceAccess) != len(all.Permissions) {
		t.Fatalf("requiredResourceAccess = %+v", rra)
	}
	if rra[0].ResourceAccess[0].ID != "246dd0d5-5bd0-4def-940b-0421030a5b68" || rra[0].ResourceAccess[0].Type != "Role" {
		t.Errorf("first entry = %+v, want Policy.Read.All as a Role", rra[0].ResourceAccess[0])
	}
}
