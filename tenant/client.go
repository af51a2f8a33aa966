// Package tenant is the Microsoft 365 side of c2bot: the Graph client
// (msgraph-sdk-go request builders with MSAL client-credential tokens), the
// checks that find what blocks a tool's legacy sign-ins, and the change plan
// whose items snapshot, apply, verify and restore themselves. The sandbox
// tenant lives in tenant/sandbox.
package tenant

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// ErrNotApplied is returned by Verify when the read-back value is not the one set.
var ErrNotApplied = errors.New("change not visible on read-back")

// Config says which tenant to reach and how to sign in.
type Config struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// CertFile is a PEM file holding the app's certificate and private key;
	// used when ClientSecret is empty.
	CertFile string
	// GraphURL and AuthorityURL default to https://graph.microsoft.com and
	// https://login.microsoftonline.com; both must be https.
	GraphURL     string
	AuthorityURL string
	// HTTPClient is used for Graph and token requests (the sandbox passes one
	// that trusts its certificate). Nil means a client with sane timeouts.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// MaxRetries bounds retries of 429/503 answers; zero means 4.
	MaxRetries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Client reads and changes one Microsoft 365 tenant through Graph.
type Client struct{}

// New validates cfg, fills defaults and builds the client. It does no I/O.
func New(cfg Config) (*Client, error) { panic("not implemented") }

// Diagnose runs every check concurrently and returns the findings and the
// change plan. A check that cannot run becomes a finding; an error is
// returned only when nothing could be read at all (bad credentials).
func (c *Client) Diagnose(ctx context.Context, t Target) (Report, error) { panic("not implemented") }

// SignIns summarises the account's sign-ins since the given time.
func (c *Client) SignIns(ctx context.Context, account string, since time.Time) (SignInSummary, error) {
	panic("not implemented")
}

// Snapshot reads the item's current value into Before and returns it.
func (c *Client) Snapshot(ctx context.Context, it Item) (Item, error) { panic("not implemented") }

// Apply writes it.After.
func (c *Client) Apply(ctx context.Context, it Item) error { panic("not implemented") }

// Verify reads the item back; ErrNotApplied when it does not hold After.
func (c *Client) Verify(ctx context.Context, it Item) error { panic("not implemented") }

// Restore writes it.Before only while the tenant still holds it.After.
func (c *Client) Restore(ctx context.Context, it Item) (RestoreResult, error) {
	panic("not implemented")
}
