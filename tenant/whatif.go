package tenant

import (
	"context"
	"errors"
)

// EvaluateConditionalAccess evaluates every Conditional Access policy that
// is not disabled for who and each sign-in in sis: Entra's What If first,
// and always locally too.
func (c *Client) EvaluateConditionalAccess(ctx context.Context, who CAPrincipal, sis []CASignIn) (CAEvaluation, error) {
	return CAEvaluation{}, errors.New("evaluate conditional access: not yet implemented")
}
