package tenant_test

import (
	"context"
	"testing"
	"time"

	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// BenchmarkDiagnose is a whole diagnosis of a scenario through the
// production client: Security defaults, SharePoint, a day of the tool's
// sign-ins, the account's memberships, What If and the local evaluation.
func BenchmarkDiagnose(b *testing.B) {
	for _, name := range []string{"mfa-nested-group", "workload-identity", "vendor-today"} {
		b.Run(name, func(b *testing.B) {
			clk := newClock(today)
			srv, sc, err := sandbox.StartScenario(name, sandbox.Options{Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			srv.SetCAThrottle(false)
			hc := srv.Client()
			defer hc.CloseIdleConnections()
			c, err := tenant.New(tenant.Config{TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID,
				ClientSecret: sandbox.DefaultClientSecret, GraphURL: srv.URL(), AuthorityURL: srv.URL(), HTTPClient: hc, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			tg := tenant.Target{Account: sandbox.DefaultToolAccount, Product: sc.Product, Version: sc.Version, AppID: sc.ToolAppID, Since: 24 * time.Hour}
			ctx := context.Background()
			if _, err := c.Diagnose(ctx, tg); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Diagnose(ctx, tg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
