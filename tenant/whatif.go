package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/identity"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// Entra's What If: POST /identity/conditionalAccess/evaluate (v1.0),
// https://learn.microsoft.com/graph/api/conditionalaccessroot-evaluate.
// The body names the identity (userSignIn.userId, or
// servicePrincipalSignIn.servicePrincipalId, which is the appId:
// https://learn.microsoft.com/graph/api/resources/serviceprincipalsignin),
// the application (applicationContext.includeApplications) and the sign-in
// conditions; the answer is a whatIfAnalysisResult per policy: the policy
// itself plus policyApplies and analysisReasons, "the first condition that
// wasn't satisfied" (https://learn.microsoft.com/entra/identity/conditional-access/what-if-tool).
//
// What If "can't evaluate" conditions whose sign-in details are missing and
// counts them as not met (what-if-tool, "Key differences"). c2bot does not
// know the tool's network location, device platform or risk, so it sends
// only the client app type; a policy What If turns down for one of those
// conditions is reported as may_apply, as the local evaluator does.

// whatIfUndecided are the analysisReasons for a condition c2bot cannot
// supply, mapped to the condition names CAVerdict uses.
var whatIfUndecided = map[string]string{
	"location":             "locations",
	"devicePlatform":       "platforms",
	"signInRisk":           "signInRisk",
	"userRisk":             "userRisk",
	"insiderRisk":          "insiderRisk",
	"devices":              "deviceFilter",
	"time":                 "time",
	"notEnoughInformation": "notEnoughInformation",
}

// undecided maps analysisReasons (a comma-separated flag set) to the
// conditions c2bot cannot supply; nil unless every flag is one of them.
func undecided(reasons string) []string {
	var out []string
	for _, r := range strings.Split(reasons, ",") {
		cond, ok := whatIfUndecided[strings.TrimSpace(r)]
		if !ok {
			return nil
		}
		out = append(out, cond)
	}
	return out
}

// whatIfAnswer is What If's verdict on one policy for one sign-in.
type whatIfAnswer struct {
	applies CAApplies
	reasons string // analysisReasons as Graph spells it
	policy  caPolicy
}

// EvaluateConditionalAccess evaluates every Conditional Access policy that
// is not disabled for who and each sign-in in sis. It always evaluates
// locally (EvaluateCAPolicy: the evidence shown) and asks Entra's What If
// for each sign-in; when What If answers, Source is CASourceWhatIf and its
// policyApplies decides Applies, a disagreement with the local verdict kept
// as a reason. When What If is refused (403) or unavailable (400, 404, 5xx
// after retries), Source is CASourceLocal and WhatIfError says why. An error
// is returned only when the policies cannot be listed (a *GraphError or an
// authentication error) or ctx ends.
func (c *Client) EvaluateConditionalAccess(ctx context.Context, who CAPrincipal, sis []CASignIn) (CAEvaluation, error) {
	if who.ID == "" {
		return CAEvaluation{}, errors.New("evaluate conditional access: principal has no object id")
	}
	pols, err := c.listCAPolicies(ctx)
	if err != nil {
		return CAEvaluation{}, fmt.Errorf("evaluate conditional access: %w", err)
	}
	answers := make([]map[string]whatIfAnswer, len(sis))
	var whatIfErr error
	for i, si := range sis {
		answers[i], whatIfErr = c.whatIf(ctx, who, si)
		if whatIfErr != nil {
			break
		}
	}
	if whatIfErr != nil && ctx.Err() != nil {
		return CAEvaluation{}, fmt.Errorf("evaluate conditional access: %w", ctx.Err())
	}
	out := CAEvaluation{Source: CASourceWhatIf}
	if whatIfErr != nil {
		out = CAEvaluation{Source: CASourceLocal, WhatIfError: whatIfErr.Error()}
		c.log.InfoContext(ctx, "what if unavailable, evaluating conditional access locally", "error", whatIfErr)
	}
	seen := map[string]bool{}
	for _, p := range pols {
		seen[strings.ToLower(p.ID)] = true
	}
	// A policy What If reports that the list did not have (created in
	// between) is evaluated from What If's copy.
	if whatIfErr == nil {
		for _, m := range answers {
			for id, a := range m {
				if !seen[id] {
					seen[id] = true
					pols = append(pols, a.policy)
				}
			}
		}
	}
	for _, p := range pols {
		if p.State == caStateDisabled {
			continue
		}
		for i, si := range sis {
			v := EvaluateCAPolicy(p, who, si)
			if whatIfErr == nil {
				a, ok := answers[i][strings.ToLower(p.ID)]
				if !ok {
					// What If lists every enabled and report-only policy;
					// one missing means it was deleted or disabled meanwhile.
					v.Reasons = append(v.Reasons, "Entra's What If did not report this policy; local verdict kept")
				} else {
					mergeWhatIf(&v, p, a)
				}
			}
			out.Verdicts = append(out.Verdicts, v)
		}
	}
	return out, nil
}

// mergeWhatIf lets Entra's answer decide Applies, keeping the local
// evidence and the disagreement.
func mergeWhatIf(v *CAVerdict, p caPolicy, a whatIfAnswer) {
	local := v.Applies
	v.WhatIfReasons = a.reasons
	switch {
	case a.applies == CAAppliesYes:
		v.Applies, v.Conditions = CAAppliesYes, nil
	case a.applies == CAAppliesMaybe && local == CAAppliesNo:
		// What If stopped at a condition it could not judge; the local
		// evaluation found one that rules the policy out.
	case a.applies == CAAppliesMaybe:
		v.Applies = CAAppliesMaybe
		for _, cond := range undecided(a.reasons) {
			if !hasFold(v.Conditions, cond) {
				v.Conditions = append(v.Conditions, cond)
			}
		}
	default:
		v.Applies, v.Conditions = CAAppliesNo, nil
	}
	if v.Applies != local {
		v.Reasons = append(v.Reasons, fmt.Sprintf("Entra's What If says %s (analysisReasons %s) where the local evaluation says %s; What If decides",
			v.Applies, a.reasons, local))
	}
	v.Blocks = v.Applies == CAAppliesYes && v.GrantDefeats && p.State == caStateEnabled
}

// whatIf asks Entra about one sign-in; the answer maps lower-case policy
// ids to verdicts.
func (c *Client) whatIf(ctx context.Context, who CAPrincipal, si CASignIn) (map[string]whatIfAnswer, error) {
	body := identity.NewConditionalAccessEvaluatePostRequestBody()
	switch who.Kind {
	case CAPrincipalServicePrincipal:
		if who.AppID == "" {
			return nil, errors.New("service principal has no app id")
		}
		id := models.NewServicePrincipalSignIn()
		id.SetServicePrincipalId(&who.AppID)
		body.SetSignInIdentity(id)
	default:
		id := models.NewUserSignIn()
		id.SetUserId(&who.ID)
		body.SetSignInIdentity(id)
	}
	app := models.NewApplicationContext()
	app.SetIncludeApplications([]string{si.Application})
	body.SetSignInContext(app)
	cond := models.NewSignInConditions()
	if si.ClientAppType != "" {
		v, err := models.ParseConditionalAccessClientApp(si.ClientAppType)
		if err != nil || v == nil {
			return nil, fmt.Errorf("client app type %q: not a conditionalAccessClientApp", si.ClientAppType)
		}
		cond.SetClientAppType(v.(*models.ConditionalAccessClientApp))
	}
	body.SetSignInConditions(cond)
	all := false
	body.SetAppliedPoliciesOnly(&all)

	out := map[string]whatIfAnswer{}
	err := c.call(ctx, "what if for "+appName(si.Application), func(ctx context.Context) error {
		b := identity.NewIdentityRequestBuilderInternal(c.pathParams(), c.adapter).ConditionalAccess().Evaluate()
		res, err := b.PostAsEvaluatePostResponse(ctx, body, nil)
		if err != nil {
			return err
		}
		if res == nil {
			return errors.New("empty answer")
		}
		for _, r := range res.GetValue() {
			if r == nil || deref(r.GetId()) == "" {
				continue
			}
			a := whatIfAnswer{policy: policyFromModel(r), applies: CAAppliesNo}
			if r.GetAnalysisReasons() != nil {
				a.reasons = r.GetAnalysisReasons().String()
			}
			switch {
			case r.GetPolicyApplies() == nil:
				return fmt.Errorf("policy %s: answer has no policyApplies", *r.GetId())
			case *r.GetPolicyApplies():
				a.applies = CAAppliesYes
			case len(undecided(a.reasons)) > 0:
				a.applies = CAAppliesMaybe
			}
			out[strings.ToLower(*r.GetId())] = a
		}
		return nil
	})
	return out, err
}
