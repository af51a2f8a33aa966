package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// ErrInvalidItem is returned for an Item whose kind is unknown or whose
// values do not fit its kind.
var ErrInvalidItem = errors.New("invalid plan item")

// policyDeleted is Restore's Current for a Conditional Access policy that
// no longer exists.
const policyDeleted = "policy deleted"

// validate checks the item's kind, values and (for Conditional Access) ids.
func (it Item) validate() error {
	okValue := func(v string) bool { return v == ValueTrue || v == ValueFalse }
	switch it.Kind {
	case KindSecurityDefaults, KindSharePointLegacyAuth, KindSharePointInvitedMatch:
	case KindCAExcludeUser:
		okValue = func(v string) bool { return v == ValueIncluded || v == ValueExcluded }
		if it.PolicyID == "" || it.UserID == "" {
			return fmt.Errorf("%w: %s needs a policy id and a user id", ErrInvalidItem, it.Kind)
		}
	case KindCAExcludeServicePrincipal:
		okValue = func(v string) bool { return v == ValueIncluded || v == ValueExcluded }
		if it.PolicyID == "" || !guidPattern.MatchString(it.ServicePrincipalID) {
			return fmt.Errorf("%w: %s needs a policy id and a service principal object id", ErrInvalidItem, it.Kind)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidItem, it.Kind)
	}
	if !okValue(it.Before) || !okValue(it.After) {
		return fmt.Errorf("%w: %s cannot go from %q to %q", ErrInvalidItem, it.Kind, it.Before, it.After)
	}
	return nil
}

// read returns the item's current value in the tenant.
func (c *Client) read(ctx context.Context, it Item) (string, error) {
	switch it.Kind {
	case KindSecurityDefaults:
		sd, err := c.getSecurityDefaults(ctx)
		return strconv.FormatBool(sd.Enabled), err
	case KindSharePointLegacyAuth:
		sp, err := c.getSharepointSettings(ctx)
		return strconv.FormatBool(sp.LegacyAuth), err
	case KindSharePointInvitedMatch:
		sp, err := c.getSharepointSettings(ctx)
		return strconv.FormatBool(sp.InvitedMatch), err
	case KindCAExcludeUser:
		p, err := c.getCAPolicy(ctx, it.PolicyID)
		if err != nil {
			return "", err
		}
		if containsID(policyFromModel(p).ExcludeUsers, it.UserID) {
			return ValueExcluded, nil
		}
		return ValueIncluded, nil
	case KindCAExcludeServicePrincipal:
		p, err := c.getCAPolicy(ctx, it.PolicyID)
		if err != nil {
			return "", err
		}
		if containsID(excludedServicePrincipals(p), it.ServicePrincipalID) {
			return ValueExcluded, nil
		}
		return ValueIncluded, nil
	}
	return "", fmt.Errorf("%w: unknown kind %q", ErrInvalidItem, it.Kind)
}

// write sets the item to v (one of its kind's values).
func (c *Client) write(ctx context.Context, it Item, v string) error {
	b := v == ValueTrue
	switch it.Kind {
	case KindSecurityDefaults:
		return c.setSecurityDefaults(ctx, b)
	case KindSharePointLegacyAuth:
		return c.patchSharepointSettings(ctx, "update sharepoint legacy auth", func(s *models.SharepointSettings) {
			s.SetIsLegacyAuthProtocolsEnabled(&b)
		})
	case KindSharePointInvitedMatch:
		return c.patchSharepointSettings(ctx, "update sharepoint invited-account match", func(s *models.SharepointSettings) {
			s.SetIsRequireAcceptingUserToMatchInvitedUserEnabled(&b)
		})
	case KindCAExcludeUser:
		return c.setCAExclusion(ctx, it.PolicyID, it.UserID, v == ValueExcluded)
	case KindCAExcludeServicePrincipal:
		return c.setCAServicePrincipalExclusion(ctx, it.PolicyID, it.ServicePrincipalID, v == ValueExcluded)
	}
	return fmt.Errorf("%w: unknown kind %q", ErrInvalidItem, it.Kind)
}

// Snapshot reads the item's current value into Before and returns it.
// Errors: ErrInvalidItem, or the Graph read's error.
func (c *Client) Snapshot(ctx context.Context, it Item) (Item, error) {
	if err := it.validate(); err != nil {
		return it, err
	}
	cur, err := c.read(ctx, it)
	if err != nil {
		return it, fmt.Errorf("snapshot %s: %w", it.Kind, err)
	}
	it.Before = cur
	return it, nil
}

// Apply writes it.After. It is safe to repeat. Errors: ErrInvalidItem, or
// the Graph write's error (a *GraphError for an answer from Graph).
func (c *Client) Apply(ctx context.Context, it Item) error {
	if err := it.validate(); err != nil {
		return err
	}
	if err := c.write(ctx, it, it.After); err != nil {
		return fmt.Errorf("apply %s: %w", it.Kind, err)
	}
	c.log.InfoContext(ctx, "tenant setting changed", "tenant_id", c.cfg.TenantID, "kind", it.Kind,
		"policy", it.PolicyID, "from", it.Before, "to", it.After)
	return nil
}

// Verify reads the item back; the error wraps ErrNotApplied (naming the
// value seen) when it does not hold After.
func (c *Client) Verify(ctx context.Context, it Item) error {
	if err := it.validate(); err != nil {
		return err
	}
	cur, err := c.read(ctx, it)
	if err != nil {
		return fmt.Errorf("verify %s: %w", it.Kind, err)
	}
	if cur != it.After {
		return fmt.Errorf("verify %s: %w: reads %q, want %q", it.Kind, ErrNotApplied, cur, it.After)
	}
	return nil
}

// Restore writes it.Before only while the tenant still holds it.After:
// Restored (written and read back), AlreadyOriginal (it holds Before;
// nothing written) or Drifted (it holds something else, or the Conditional
// Access policy is gone; left alone). When the read-back after writing does
// not show Before, the result is Restored with Current the value seen, and
// the error wraps ErrNotApplied; a retry settles it.
func (c *Client) Restore(ctx context.Context, it Item) (RestoreResult, error) {
	if err := it.validate(); err != nil {
		return RestoreResult{}, err
	}
	cur, err := c.read(ctx, it)
	if err != nil && (it.Kind == KindCAExcludeUser || it.Kind == KindCAExcludeServicePrincipal) && IsNotFound(err) {
		cur, err = policyDeleted, nil
	}
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore %s: %w", it.Kind, err)
	}
	switch cur {
	case it.Before:
		return RestoreResult{Outcome: AlreadyOriginal, Current: cur}, nil
	case it.After:
	default:
		c.log.WarnContext(ctx, "tenant setting drifted; left alone", "tenant_id", c.cfg.TenantID,
			"kind", it.Kind, "policy", it.PolicyID, "current", cur, "set", it.After)
		return RestoreResult{Outcome: Drifted, Current: cur}, nil
	}
	if err := c.write(ctx, it, it.Before); err != nil {
		return RestoreResult{}, fmt.Errorf("restore %s: %w", it.Kind, err)
	}
	back, err := c.read(ctx, it)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore %s: read back: %w", it.Kind, err)
	}
	res := RestoreResult{Outcome: Restored, Current: back}
	if back != it.Before {
		return res, fmt.Errorf("restore %s: %w: reads %q, want %q", it.Kind, ErrNotApplied, back, it.Before)
	}
	c.log.InfoContext(ctx, "tenant setting restored", "tenant_id", c.cfg.TenantID, "kind", it.Kind,
		"policy", it.PolicyID, "to", it.Before)
	return res, nil
}

func excludedServicePrincipals(p models.ConditionalAccessPolicyable) []string {
	if cond := p.GetConditions(); cond != nil {
		if ca := cond.GetClientApplications(); ca != nil {
			return ca.GetExcludeServicePrincipals()
		}
	}
	return nil
}

// setCAServicePrincipalExclusion puts the service principal spID into
// (exclude) or out of (!exclude) the policy's
// conditions.clientApplications.excludeServicePrincipals
// (https://learn.microsoft.com/graph/api/resources/conditionalaccessclientapplications).
// As for users, the PATCH carries the whole current clientApplications
// condition (Graph replaces the lists it is sent) and nothing else; it is
// skipped when the policy already is as wanted.
func (c *Client) setCAServicePrincipalExclusion(ctx context.Context, policyID, spID string, exclude bool) error {
	p, err := c.getCAPolicy(ctx, policyID)
	if err != nil {
		return err
	}
	var cur models.ConditionalAccessClientApplicationsable
	if cond := p.GetConditions(); cond != nil {
		cur = cond.GetClientApplications()
	}
	if cur == nil {
		return fmt.Errorf("conditional access policy %s has no clientApplications condition (not a workload-identity policy)", policyID)
	}
	excluded, changed := withID(cur.GetExcludeServicePrincipals(), spID, exclude)
	if !changed {
		return nil
	}
	ca := models.NewConditionalAccessClientApplications()
	ca.SetIncludeServicePrincipals(nonNil(cur.GetIncludeServicePrincipals()))
	ca.SetExcludeServicePrincipals(excluded)
	if f := cur.GetServicePrincipalFilter(); f != nil {
		ca.SetServicePrincipalFilter(f)
	}
	cond := models.NewConditionalAccessConditionSet()
	cond.SetClientApplications(ca)
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
