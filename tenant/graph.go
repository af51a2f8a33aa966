package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	abs "github.com/microsoft/kiota-abstractions-go"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/admin"
	"github.com/microsoftgraph/msgraph-sdk-go/identity"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/policies"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// Paging bounds.
const (
	// maxPolicyPages bounds Conditional Access paging (a tenant has at most
	// a few hundred policies).
	maxPolicyPages = 50
)

// errorMapping makes kiota parse every error answer as Graph's ODataError.
var errorMapping = abs.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue}

// call runs one Graph operation and turns its failure into a *GraphError
// (or an ErrAuthentication / network error) wrapped with op.
func (c *Client) call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	label := OpLabel(op)
	ctx, seen := withCapture(withOp(ctx, label))
	start := c.now()
	err := f(ctx)
	if err != nil {
		err = graphError(err, seen)
	}
	c.metrics.GraphCall(label, statusClass(err), c.now().Sub(start))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (c *Client) pathParams() map[string]string {
	return map[string]string{"baseurl": c.adapter.GetBaseUrl()}
}

func (c *Client) policiesAPI() *policies.PoliciesRequestBuilder {
	return policies.NewPoliciesRequestBuilderInternal(c.pathParams(), c.adapter)
}

func (c *Client) sharepointSettingsAPI() *admin.SharepointSettingsRequestBuilder {
	return admin.NewAdminRequestBuilderInternal(c.pathParams(), c.adapter).Sharepoint().Settings()
}

func (c *Client) caPoliciesAPI() *identity.ConditionalAccessPoliciesRequestBuilder {
	return identity.NewIdentityRequestBuilderInternal(c.pathParams(), c.adapter).ConditionalAccess().Policies()
}

// checkLink accepts a paging link only on the Graph host: a link elsewhere
// would carry the tenant's data (and, with another client, a token) away.
func (c *Client) checkLink(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("paging link: %w", err)
	}
	if !strings.EqualFold(u.Scheme, c.graphBase.Scheme) || !strings.EqualFold(u.Host, c.graphBase.Host) {
		return fmt.Errorf("paging link to unexpected host %q", u.Host)
	}
	return nil
}

// securityDefaults is the part of identitySecurityDefaultsEnforcementPolicy
// the checks use.
type securityDefaults struct {
	ID, Name string
	Enabled  bool
}

func (c *Client) getSecurityDefaults(ctx context.Context) (securityDefaults, error) {
	var out securityDefaults
	err := c.call(ctx, "get security defaults", func(ctx context.Context) error {
		p, err := c.policiesAPI().IdentitySecurityDefaultsEnforcementPolicy().Get(ctx, nil)
		if err != nil {
			return err
		}
		if p == nil || p.GetIsEnabled() == nil {
			return errors.New("answer has no isEnabled")
		}
		out = securityDefaults{ID: deref(p.GetId()), Name: deref(p.GetDisplayName()), Enabled: *p.GetIsEnabled()}
		return nil
	})
	return out, err
}

func (c *Client) setSecurityDefaults(ctx context.Context, enabled bool) error {
	return c.call(ctx, "update security defaults", func(ctx context.Context) error {
		// A fresh model holding only the changed field; the constructor's
		// @odata.type is dropped so the body is exactly {"isEnabled":…}.
		body := models.NewIdentitySecurityDefaultsEnforcementPolicy()
		body.SetOdataType(nil)
		body.SetIsEnabled(&enabled)
		b := c.policiesAPI().IdentitySecurityDefaultsEnforcementPolicy()
		info, err := b.ToPatchRequestInformation(ctx, body, nil)
		if err != nil {
			return err
		}
		return c.adapter.SendNoContent(ctx, info, errorMapping)
	})
}

// sharepointSettings is the part of sharepointSettings the checks use.
type sharepointSettings struct {
	LegacyAuth   bool // isLegacyAuthProtocolsEnabled
	InvitedMatch bool // isRequireAcceptingUserToMatchInvitedUserEnabled
}

// lenientSharepointSettings skips allowedDomainGuidsForSyncApp, which the
// model parses as GUIDs: one malformed entry (Graph's own documentation
// example has one) would otherwise fail the whole read.
type lenientSharepointSettings struct {
	*models.SharepointSettings
}

func (s lenientSharepointSettings) GetFieldDeserializers() map[string]func(absser.ParseNode) error {
	f := s.SharepointSettings.GetFieldDeserializers()
	delete(f, "allowedDomainGuidsForSyncApp")
	return f
}

func createLenientSharepointSettings(absser.ParseNode) (absser.Parsable, error) {
	return lenientSharepointSettings{models.NewSharepointSettings()}, nil
}

func (c *Client) getSharepointSettings(ctx context.Context) (sharepointSettings, error) {
	var out sharepointSettings
	err := c.call(ctx, "get sharepoint settings", func(ctx context.Context) error {
		info, err := c.sharepointSettingsAPI().ToGetRequestInformation(ctx, nil)
		if err != nil {
			return err
		}
		res, err := c.adapter.Send(ctx, info, createLenientSharepointSettings, errorMapping)
		if err != nil {
			return err
		}
		s, ok := res.(lenientSharepointSettings)
		if !ok || s.SharepointSettings == nil {
			return errors.New("empty answer")
		}
		legacy, invited := s.GetIsLegacyAuthProtocolsEnabled(), s.GetIsRequireAcceptingUserToMatchInvitedUserEnabled()
		if legacy == nil || invited == nil {
			return errors.New("answer lacks isLegacyAuthProtocolsEnabled or isRequireAcceptingUserToMatchInvitedUserEnabled")
		}
		out = sharepointSettings{LegacyAuth: *legacy, InvitedMatch: *invited}
		return nil
	})
	return out, err
}

// patchSharepointSettings PATCHes a fresh model that set holds only the
// changed field in. The answer (the whole object) is not parsed: callers read
// back with a GET.
func (c *Client) patchSharepointSettings(ctx context.Context, op string, set func(*models.SharepointSettings)) error {
	return c.call(ctx, op, func(ctx context.Context) error {
		body := models.NewSharepointSettings()
		set(body)
		info, err := c.sharepointSettingsAPI().ToPatchRequestInformation(ctx, body, nil)
		if err != nil {
			return err
		}
		return c.adapter.SendNoContent(ctx, info, errorMapping)
	})
}

// caPolicy is a Conditional Access policy reduced to what the checks use.
// Empty lists mean the condition is not configured.
type caPolicy struct {
	ID, Name            string
	State               string // enabled, disabled, enabledForReportingButNotEnforced
	TemplateID          string
	ClientAppTypes      []string
	BuiltInControls     []string
	IncludeApplications []string
	IncludeUsers        []string
	ExcludeUsers        []string
	IncludeGroups       []string
	ExcludeGroups       []string
	IncludeRoles        []string
	ExcludeRoles        []string
	caPolicyMore
}

func policyFromModel(p models.ConditionalAccessPolicyable) caPolicy {
	out := caPolicy{ID: deref(p.GetId()), Name: deref(p.GetDisplayName()), TemplateID: deref(p.GetTemplateId())}
	if t := p.GetCreatedDateTime(); t != nil {
		out.Created = *t
	}
	if s := p.GetState(); s != nil {
		out.State = s.String()
	}
	if g := p.GetGrantControls(); g != nil {
		for _, v := range g.GetBuiltInControls() {
			out.BuiltInControls = append(out.BuiltInControls, v.String())
		}
		grantFromModel(&out, g)
	}
	cond := p.GetConditions()
	if cond == nil {
		return out
	}
	for _, v := range cond.GetClientAppTypes() {
		out.ClientAppTypes = append(out.ClientAppTypes, v.String())
	}
	if a := cond.GetApplications(); a != nil {
		out.IncludeApplications = a.GetIncludeApplications()
	}
	if u := cond.GetUsers(); u != nil {
		out.IncludeUsers = u.GetIncludeUsers()
		out.ExcludeUsers = u.GetExcludeUsers()
		out.IncludeGroups = u.GetIncludeGroups()
		out.ExcludeGroups = u.GetExcludeGroups()
		out.IncludeRoles = u.GetIncludeRoles()
		out.ExcludeRoles = u.GetExcludeRoles()
	}
	conditionsFromModel(&out, cond)
	return out
}

// listCAPolicies reads every Conditional Access policy, following paging.
func (c *Client) listCAPolicies(ctx context.Context) ([]caPolicy, error) {
	var out []caPolicy
	err := c.call(ctx, "list conditional access policies", func(ctx context.Context) error {
		b := c.caPoliciesAPI()
		for page := 0; ; page++ {
			if page >= maxPolicyPages {
				return fmt.Errorf("more than %d pages of policies", maxPolicyPages)
			}
			res, err := b.Get(ctx, nil)
			if err != nil {
				return err
			}
			for _, p := range res.GetValue() {
				if p != nil {
					out = append(out, policyFromModel(p))
				}
			}
			next := deref(res.GetOdataNextLink())
			if next == "" {
				return nil
			}
			if err := c.checkLink(next); err != nil {
				return err
			}
			b = b.WithUrl(next)
		}
	})
	return out, err
}

// getCAPolicy reads one policy; the model is returned too, for a PATCH that
// must carry the current user lists.
func (c *Client) getCAPolicy(ctx context.Context, id string) (models.ConditionalAccessPolicyable, error) {
	var out models.ConditionalAccessPolicyable
	err := c.call(ctx, "get conditional access policy "+id, func(ctx context.Context) error {
		p, err := c.caPoliciesAPI().ByConditionalAccessPolicyId(id).Get(ctx, nil)
		if err != nil {
			return err
		}
		if p == nil {
			return errors.New("empty answer")
		}
		out = p
		return nil
	})
	return out, err
}

// containsID reports whether ids holds id (object ids compare case-insensitively).
func containsID(ids []string, id string) bool {
	return slices.ContainsFunc(ids, func(v string) bool { return strings.EqualFold(v, id) })
}

// nonNil returns a copy of s that is never nil, so it is serialised as []
// rather than left out (which would keep the old list).
func nonNil(s []string) []string {
	return append(make([]string, 0, len(s)), s...)
}

// withID returns ids with id added (in) or removed (!in), compared as
// Graph compares object ids, and whether that changed anything.
func withID(ids []string, id string, in bool) ([]string, bool) {
	if containsID(ids, id) == in {
		return ids, false
	}
	if in {
		return append(nonNil(ids), id), true
	}
	return slices.DeleteFunc(nonNil(ids), func(v string) bool { return strings.EqualFold(v, id) }), true
}

// setCAExclusion puts userID into (exclude) or out of (!exclude) the policy's
// conditions.users.excludeUsers. The PATCH carries the whole current users
// condition (Graph replaces the lists it is sent) and nothing else; it is
// skipped when the policy already is as wanted.
func (c *Client) setCAExclusion(ctx context.Context, policyID, userID string, exclude bool) error {
	p, err := c.getCAPolicy(ctx, policyID)
	if err != nil {
		return err
	}
	var cur models.ConditionalAccessUsersable
	if cond := p.GetConditions(); cond != nil {
		cur = cond.GetUsers()
	}
	if cur == nil {
		return fmt.Errorf("conditional access policy %s has no users condition", policyID)
	}
	excluded, changed := withID(cur.GetExcludeUsers(), userID, exclude)
	if !changed {
		return nil
	}
	u := models.NewConditionalAccessUsers()
	u.SetIncludeUsers(nonNil(cur.GetIncludeUsers()))
	u.SetExcludeUsers(excluded)
	u.SetIncludeGroups(nonNil(cur.GetIncludeGroups()))
	u.SetExcludeGroups(nonNil(cur.GetExcludeGroups()))
	u.SetIncludeRoles(nonNil(cur.GetIncludeRoles()))
	u.SetExcludeRoles(nonNil(cur.GetExcludeRoles()))
	if g := cur.GetIncludeGuestsOrExternalUsers(); g != nil {
		u.SetIncludeGuestsOrExternalUsers(g)
	}
	if g := cur.GetExcludeGuestsOrExternalUsers(); g != nil {
		u.SetExcludeGuestsOrExternalUsers(g)
	}
	cond := models.NewConditionalAccessConditionSet()
	cond.SetUsers(u)
	body := models.NewConditionalAccessPolicy()
	body.SetConditions(cond)
	return c.call(ctx, "update conditional access policy "+policyID, func(ctx context.Context) error {
		info, err := c.caPoliciesAPI().ByConditionalAccessPolicyId(policyID).ToPatchRequestInformation(ctx, body, nil)
		if err != nil {
			return err
		}
		return c.adapter.SendNoContent(ctx, info, errorMapping)
	})
}

// lookupUser resolves a user principal name to its object id.
func (c *Client) lookupUser(ctx context.Context, upn string) (string, error) {
	var id string
	err := c.call(ctx, "look up "+upn, func(ctx context.Context) error {
		u, err := users.NewUsersRequestBuilderInternal(c.pathParams(), c.adapter).ByUserId(upn).Get(ctx,
			&users.UserItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: []string{"id", "userPrincipalName"}},
			})
		if err != nil {
			return err
		}
		if u == nil || deref(u.GetId()) == "" {
			return errors.New("answer has no id")
		}
		id = *u.GetId()
		return nil
	})
	return id, err
}
