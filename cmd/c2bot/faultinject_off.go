//go:build !faultinject

package main

import (
	"log/slog"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
)

// injectFaults is the production build's: no crash points, nothing read,
// nothing wrapped. The fault-injection tests build with -tags faultinject
// (faultinject.go).
func injectFaults(tenants []handlers.TenantConfig, st handlers.Store, senders []bot.Sender, _ *slog.Logger) ([]handlers.TenantConfig, handlers.Store, []bot.Sender, error) {
	return tenants, st, senders, nil
}
