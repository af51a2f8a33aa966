package tenant

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// maxMemberPages bounds transitiveMemberOf paging (100 objects a page by
// default: a tool account in more than 5,000 groups is not plausible).
const maxMemberPages = 50

// ErrNotFound is returned (wrapped) when the user or service principal does
// not exist in the tenant.
var ErrNotFound = errors.New("not found")

// ResolveUser reads the user upn (or object id) with its user type, its
// transitive group memberships and the directory roles it holds, for
// EvaluateCAPolicy. A 404 wraps ErrNotFound; other failures are
// *GraphError.
//
// GET /users/{id | userPrincipalName}?$select=id,userPrincipalName,userType,displayName
// (https://learn.microsoft.com/graph/api/user-get) and
// GET /users/{id}/transitiveMemberOf (https://learn.microsoft.com/graph/api/user-list-transitivememberof):
// groups (nested ones included) and directoryRole objects, whose
// roleTemplateId is what Conditional Access includeRoles/excludeRoles hold.
// When transitiveMemberOf is refused (403) the principal is returned with
// MembershipError set.
func (c *Client) ResolveUser(ctx context.Context, upn string) (CAPrincipal, error) {
	if strings.TrimSpace(upn) == "" {
		return CAPrincipal{}, errors.New("resolve user: empty user principal name")
	}
	out := CAPrincipal{Kind: CAPrincipalUser}
	err := c.call(ctx, "look up "+upn, func(ctx context.Context) error {
		u, err := users.NewUsersRequestBuilderInternal(c.pathParams(), c.adapter).ByUserId(upn).Get(ctx,
			&users.UserItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{
					Select: []string{"id", "userPrincipalName", "userType", "displayName"},
				},
			})
		if err != nil {
			return err
		}
		if u == nil || deref(u.GetId()) == "" {
			return errors.New("answer has no id")
		}
		out.ID = *u.GetId()
		out.UserPrincipalName = deref(u.GetUserPrincipalName())
		out.DisplayName = deref(u.GetDisplayName())
		out.UserType = strings.ToLower(deref(u.GetUserType()))
		if out.UserType == "" {
			out.UserType = "member"
		}
		return nil
	})
	if err != nil {
		return CAPrincipal{}, notFound(err)
	}
	if err := c.memberships(ctx, &out); err != nil {
		var ge *GraphError
		if !errors.As(err, &ge) || ge.Status != 403 {
			return CAPrincipal{}, err
		}
		// Refused (no GroupMember.Read.All): the verdicts that depend on
		// groups or roles become "may apply", and What If still knows.
		out.GroupIDs, out.RoleTemplateIDs = nil, nil
		out.MembershipError = err.Error()
	}
	return out, nil
}

// notFound adds ErrNotFound to a 404 GraphError.
func notFound(err error) error {
	var ge *GraphError
	if errors.As(err, &ge) && ge.Status == 404 {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// memberships fills the principal's groups and roles from transitiveMemberOf.
func (c *Client) memberships(ctx context.Context, p *CAPrincipal) error {
	p.GroupNames = map[string]string{}
	p.RoleNames = map[string]string{}
	return c.call(ctx, "list memberships of "+accountName(*p), func(ctx context.Context) error {
		b := users.NewUsersRequestBuilderInternal(c.pathParams(), c.adapter).ByUserId(p.ID).TransitiveMemberOf()
		cfg := &users.ItemTransitiveMemberOfRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemTransitiveMemberOfRequestBuilderGetQueryParameters{
				Select: []string{"id", "displayName", "roleTemplateId"},
			},
		}
		for page := 0; ; page++ {
			if page >= maxMemberPages {
				return fmt.Errorf("more than %d pages of memberships", maxMemberPages)
			}
			res, err := b.Get(ctx, cfg)
			if err != nil {
				return err
			}
			for _, o := range res.GetValue() {
				switch v := o.(type) {
				case models.DirectoryRoleable:
					if t := deref(v.GetRoleTemplateId()); t != "" {
						p.RoleTemplateIDs = append(p.RoleTemplateIDs, t)
						p.RoleNames[t] = deref(v.GetDisplayName())
					}
				case models.Groupable:
					if id := deref(v.GetId()); id != "" {
						p.GroupIDs = append(p.GroupIDs, id)
						p.GroupNames[id] = deref(v.GetDisplayName())
					}
				}
			}
			next := deref(res.GetOdataNextLink())
			if next == "" {
				return nil
			}
			if err := c.checkLink(next); err != nil {
				return err
			}
			// The next link carries the query; the configuration must not
			// add it again.
			b, cfg = b.WithUrl(next), nil
		}
	})
}

// ResolveServicePrincipal reads the service principal of application appID
// (GET /servicePrincipals(appId='{appId}'),
// https://learn.microsoft.com/graph/api/serviceprincipal-get). Its
// appOwnerOrganizationId tells whether the app is registered in this tenant:
// workload-identity policies cover only those. A 404 wraps ErrNotFound.
func (c *Client) ResolveServicePrincipal(ctx context.Context, appID string) (CAPrincipal, error) {
	if !objectIDPattern.MatchString(appID) {
		return CAPrincipal{}, fmt.Errorf("resolve service principal: app id %q is not a GUID", appID)
	}
	out := CAPrincipal{Kind: CAPrincipalServicePrincipal, AppID: appID}
	err := c.call(ctx, "look up service principal "+appID, func(ctx context.Context) error {
		sp, err := serviceprincipalswithappid.NewServicePrincipalsWithAppIdRequestBuilderInternal(c.pathParams(), c.adapter, &appID).Get(ctx,
			&serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
				QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{
					Select: []string{"id", "appId", "displayName", "appOwnerOrganizationId", "servicePrincipalType"},
				},
			})
		if err != nil {
			return err
		}
		if sp == nil || deref(sp.GetId()) == "" {
			return errors.New("answer has no id")
		}
		out.ID = *sp.GetId()
		out.DisplayName = deref(sp.GetDisplayName())
		if owner := sp.GetAppOwnerOrganizationId(); owner != nil && objectIDPattern.MatchString(c.cfg.TenantID) {
			out.ForeignApp = !strings.EqualFold(owner.String(), c.cfg.TenantID)
		}
		return nil
	})
	if err != nil {
		return CAPrincipal{}, notFound(err)
	}
	return out, nil
}

// objectIDPattern is a GUID (object and application ids).
var objectIDPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
