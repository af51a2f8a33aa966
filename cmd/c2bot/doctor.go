package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	slackbot "github.com/c2bot/c2bot/bot/slack"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store/postgres"
	"github.com/c2bot/c2bot/tenant"
)

// doctorTimeout bounds each check of `c2bot doctor`.
const doctorTimeout = 60 * time.Second

// cmdDoctor checks the configuration, the database, each tenant's
// credentials and read permissions, and the Slack token. It changes nothing.
func cmdDoctor(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, _, err := parseConfig("doctor", argv, stderr, getenv, defaults(), nil)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := newLogger(cfg, stderr)
	failed := 0
	report := func(ok bool, what, detail string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(stdout, "%s %s", mark, what)
		if detail != "" {
			fmt.Fprintf(stdout, ": %s", detail)
		}
		fmt.Fprintln(stdout)
	}
	// warn is for what works, but less well than it could; it fails nothing.
	warn := func(what, detail string) { fmt.Fprintf(stdout, "warn %s: %s\n", what, detail) }
	report(true, "configuration", "flags, C2_* environment and C2_CONFIG file read")

	if st, err := openStore(ctx, cfg.DB, nil); err != nil {
		report(false, "database "+dbName(cfg.DB), err.Error())
	} else {
		_ = st.Close()
		detail := "opens, not in use by another process"
		if postgres.IsURL(cfg.DB) {
			detail = "connects; schema is current"
		}
		report(true, "database "+dbName(cfg.DB), detail)
	}

	tenants, err := buildTenants(cfg, log)
	if err != nil {
		report(false, "tenants", err.Error())
	}
	if _, _, err := qualifyIdentities(tenants, cfg.People, cfg.SlackBotToken != "", cfg.TeamsAppID != "" || cfg.TeamsUnauthenticated); err != nil {
		report(false, "identities", err.Error())
	} else {
		report(true, "identities", "approver, channel and people ids are platform-qualified")
	}
	for _, t := range tenants {
		cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		rep, err := t.Client.Diagnose(cctx, handlers.Target(t))
		cancel()
		if err != nil {
			report(false, "tenant "+t.Name, err.Error())
			continue
		}
		report(true, "tenant "+t.Name, "signed in to "+rep.TenantID)
		how := "configured"
		if rep.Profile.Inferred {
			how = "inferred from sign-ins: " + rep.Profile.InferredFrom
		}
		report(true, "  tool", fmt.Sprintf("signs in as %s (%s)", rep.Profile.Auth, how))
		for _, f := range rep.Findings {
			if strings.HasPrefix(f.Title, "could not") || strings.HasPrefix(f.Title, "Could not") {
				report(false, "  "+f.Check, f.Title)
			}
		}
		if rep.SignIns.Unavailable != "" {
			report(false, "  signins", rep.SignIns.Unavailable)
		}
		if rc, ok := t.Client.(interface {
			TokenRoles(context.Context) ([]string, error)
		}); ok {
			cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
			roles, err := rc.TokenRoles(cctx)
			cancel()
			if err != nil {
				report(false, "  permissions", "cannot read the token's roles: "+err.Error())
			} else {
				checkPermissions(roles, report)
			}
		}
		if t.ApprovalsRequired > 1 && t.ApprovalsRequired > len(t.Approvers) {
			report(false, "  approvals", fmt.Sprintf("%d approvals required but only %d approver(s) configured: no change could be approved",
				t.ApprovalsRequired, len(t.Approvers)))
		}
		if len(t.Approvers) == 0 {
			report(false, "  approvers", "none configured (C2_APPROVERS): nobody can approve a change")
		}
	}

	if cfg.SlackBotToken != "" {
		sl, err := slackbot.New(slackbot.Config{BotToken: cfg.SlackBotToken, SigningSecret: cfg.SlackSigningSecret,
			AppToken: cfg.SlackAppToken, APIURL: cfg.SlackAPIURL, Logger: log})
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
			err = sl.Check(cctx)
			cancel()
		}
		report(err == nil, "slack", errText(err, "bot token accepted by auth.test"))
		if missing := sl.MissingHistoryScopes(); err == nil && len(missing) > 0 {
			warn("slack scopes", "the bot token lacks "+strings.Join(missing, ", ")+
				": a notice whose post was interrupted (a crash, a lost answer) cannot be looked up and is posted again; grant them as in the app manifest")
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

func errText(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

// checkPermissions reports, per feature, whether the Graph token's roles
// claim grants what it needs; each missing application permission is named.
// The roles are read from the token's payload without checking its
// signature: it is a self-check of what was granted, not a trust decision.
func checkPermissions(roles []string, report func(ok bool, what, detail string)) {
	type key struct {
		feature string
		access  tenant.Access
	}
	var order []key
	missing := map[key][]string{}
	for _, n := range tenant.Permissions {
		k := key{n.Feature, n.Access}
		if _, seen := missing[k]; !seen {
			order = append(order, k)
			missing[k] = nil
		}
		if !n.Granted(roles) {
			missing[k] = append(missing[k], n.String()+" (see "+n.Doc+")")
		}
	}
	for _, k := range order {
		what := fmt.Sprintf("  permission to %s %s", k.access, k.feature)
		if m := missing[k]; len(m) > 0 {
			report(false, what, "missing application permission "+strings.Join(m, " and "))
			continue
		}
		report(true, what, "")
	}
}
