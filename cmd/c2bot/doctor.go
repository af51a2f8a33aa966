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
	"github.com/c2bot/c2bot/store"
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
	report(true, "configuration", "flags, C2_* environment and C2_CONFIG file read")

	if st, err := store.Open(cfg.DB, store.Options{}); err != nil {
		report(false, "database "+cfg.DB, err.Error())
	} else {
		_ = st.Close()
		report(true, "database "+cfg.DB, "opens, not in use by another process")
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
		rep, err := t.Client.Diagnose(cctx, tenant.Target{Account: t.ToolAccount})
		cancel()
		if err != nil {
			report(false, "tenant "+t.Name, err.Error())
			continue
		}
		report(true, "tenant "+t.Name, "signed in to "+rep.TenantID)
		for _, f := range rep.Findings {
			if strings.HasPrefix(f.Title, "could not") || strings.HasPrefix(f.Title, "Could not") {
				report(false, "  "+f.Check, f.Title)
			}
		}
		if rep.SignIns.Unavailable != "" {
			report(false, "  signins", rep.SignIns.Unavailable)
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
