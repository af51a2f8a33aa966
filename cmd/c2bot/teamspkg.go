package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/c2bot/c2bot/bot/teams"
)

// cmdTeamsPackage writes the Teams app package for the configured bot
// registration. The same input gives the same bytes.
func cmdTeamsPackage(argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var opts teams.PackageOptions
	var out string
	cfg, fs, err := parseConfig("teams-package", argv, stderr, getenv, defaults(), func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "c2bot-teams.zip", "where to write the package (- for standard output)")
		fs.StringVar(&opts.Version, "app-version", "1.0.0", "the app version in the manifest")
		fs.StringVar(&opts.ShortName, "name", "c2", "the bot's short name, as people @mention it")
		fs.StringVar(&opts.DeveloperName, "developer", "", "developer name shown in Teams")
		fs.StringVar(&opts.WebsiteURL, "website", "", "https URL of the developer's site")
		fs.StringVar(&opts.PrivacyURL, "privacy-url", "", "https URL of the privacy statement")
		fs.StringVar(&opts.TermsURL, "terms-url", "", "https URL of the terms of use")
		fs.StringVar(&opts.AccentColor, "accent", "", "icon background colour, #RRGGBB")
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("teams-package takes no arguments (got %q)", fs.Arg(0))}
	}
	if cfg.TeamsAppID == "" {
		return usageError{"teams-package needs the bot's app id: set C2_TEAMS_APP_ID or --teams-app-id"}
	}
	opts.AppID = cfg.TeamsAppID
	var buf bytes.Buffer
	if err := teams.Package(&buf, opts); err != nil {
		return err
	}
	if out == "-" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Fprintf(stderr, "wrote %s (%d bytes): upload it in Teams → Apps → Manage your apps → Upload an app\n", out, buf.Len())
	return nil
}
