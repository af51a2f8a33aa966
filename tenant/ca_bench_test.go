package tenant

import (
	"context"
	"testing"

	"github.com/c2bot/c2bot/tenant/sandbox"
)

// BenchmarkEvaluateCAPolicy: one op evaluates every documented shape for
// the three profiles and both resources (246 verdicts).
func BenchmarkEvaluateCAPolicy(b *testing.B) {
	cases := caCases()
	pols := make([]caPolicy, len(cases))
	for i, c := range cases {
		pols[i] = toCAPolicy(c.policy)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, c := range cases {
			for _, auth := range caProfiles {
				who := caPrincipal(c.who, auth)
				for _, si := range ToolSignIns(auth) {
					_ = EvaluateCAPolicy(pols[i], who, si)
				}
			}
		}
	}
}

// BenchmarkEvaluateConditionalAccess: one op is what diagnose does for a
// delegated tool in a tenant holding every documented shape: list the
// policies, two What If calls, the local evaluation — through the
// production client over TLS on loopback to the sandbox (throttle off).
func BenchmarkEvaluateConditionalAccess(b *testing.B) {
	srv, c := startCASandbox(b)
	srv.SetCAThrottle(false)
	var pols []sandbox.Policy
	for _, cs := range caCases() {
		pols = append(pols, cs.policy)
	}
	srv.SetState(sandbox.State{P1: true, Policies: pols})
	ctx := context.Background()
	who, err := c.ResolveUser(ctx, sandbox.DefaultToolAccount)
	if err != nil {
		b.Fatal(err)
	}
	sis := ToolSignIns(AuthDelegated)
	b.ReportAllocs()
	for b.Loop() {
		ev, err := c.EvaluateConditionalAccess(ctx, who, sis)
		if err != nil || ev.Source != CASourceWhatIf {
			b.Fatal(err, ev.WhatIfError)
		}
	}
}
