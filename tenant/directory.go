package tenant

import (
	"context"
	"errors"
)

// ResolveUser reads the user upn (or object id) with its user type, its
// transitive group memberships and the directory roles it holds.
func (c *Client) ResolveUser(ctx context.Context, upn string) (CAPrincipal, error) {
	return CAPrincipal{}, errors.New("resolve user: not yet implemented")
}

// ResolveServicePrincipal reads the service principal of application appID
// with its transitive group memberships.
func (c *Client) ResolveServicePrincipal(ctx context.Context, appID string) (CAPrincipal, error) {
	return CAPrincipal{}, errors.New("resolve service principal: not yet implemented")
}
