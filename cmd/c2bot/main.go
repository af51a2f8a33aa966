// Command c2bot is the chat-ops bot that diagnoses why a backup or migration
// tool's sign-ins to Microsoft 365 fail as Microsoft runs it today, applies
// an approved temporary fix through Microsoft Graph where one can help, and
// always puts the tenant back. This package
// only reads the configuration and wires the other packages together.
//
// Subcommands: serve, demo, diagnose, doctor, audit, teams-package, entra-app, migrate-store, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/c2bot/c2bot/handlers"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	var status exitStatus
	if errors.As(err, &status) {
		os.Exit(int(status))
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "c2bot:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "c2bot:", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitStatus ends the process with that status and no message: the command
// has said all it had to ("diagnose" found a blocker).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const usage = `c2bot — temporary, approved and always reverted Microsoft 365 sign-in fixes, from chat, only where they help

Usage:
  c2bot serve            run the bot (Slack, Teams, console) on the configured tenants
  c2bot demo             run the bot on the built-in sandbox tenant with the local console
                         (--scenario NAME; "c2bot demo -h" lists them)
  c2bot diagnose         run the checks once and print the findings (--sandbox, --json);
                         exit status 0: nothing blocks, 3: something does
  c2bot doctor           check configuration, credentials and permissions
  c2bot audit            write the audit log (--format json|csv, --tenant, --since 30d, --request r-1)
  c2bot teams-package    write the Teams app package (zip) for upload
  c2bot entra-app        print the app registration's Graph permissions; --out DIR writes az and PowerShell scripts that create it
  c2bot migrate-store    copy a bbolt file into PostgreSQL (--from FILE --to postgres://…)
  c2bot version          print the version

Every setting is a flag, an environment variable C2_<NAME> and a key in the
YAML file named by C2_CONFIG. Run "c2bot serve -h" for the list.
`

// run dispatches a subcommand.
func run(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(argv) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no subcommand"}
	}
	sub, rest := argv[0], argv[1:]
	switch sub {
	case "serve":
		return cmdServe(ctx, rest, stderr, getenv)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr, getenv)
	case "diagnose":
		return cmdDiagnose(ctx, rest, stdout, stderr, getenv)
	case "doctor":
		return cmdDoctor(ctx, rest, stdout, stderr, getenv)
	case "audit":
		return cmdAudit(ctx, rest, stdout, stderr, getenv)
	case "teams-package":
		return cmdTeamsPackage(rest, stdout, stderr, getenv)
	case "entra-app":
		return cmdEntraApp(rest, stdout, stderr, getenv)
	case "migrate-store":
		return cmdMigrateStore(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "c2bot", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown subcommand %q", sub)}
}

// parseConfig builds a flag set with every setting plus extra flags, parses
// argv and loads the configuration over base.
func parseConfig(name string, argv []string, stderr io.Writer, getenv func(string) string, base Config, extra func(*flag.FlagSet)) (Config, *flag.FlagSet, error) {
	cfg := base
	fs := flag.NewFlagSet("c2bot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	registerFlags(fs, &cfg)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, fs, err
		}
		return cfg, fs, usageError{err.Error()}
	}
	if err := load(&cfg, fs, getenv); err != nil {
		return cfg, fs, usageError{err.Error()}
	}
	return cfg, fs, nil
}

// newLogger builds the slog logger from the configuration.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	// LogHandler adds the request, tenant and platform of the command or
	// change being handled to every line, whichever package writes it.
	if cfg.LogFormat == "json" {
		return slog.New(handlers.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(handlers.LogHandler(slog.NewTextHandler(w, opts)))
}

func cmdServe(ctx context.Context, argv []string, stderr io.Writer, getenv func(string) string) error {
	cfg, fs, err := parseConfig("serve", argv, stderr, getenv, defaults(), nil)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments (got %q)", fs.Arg(0))}
	}
	log := newLogger(cfg, stderr)
	a, err := newApp(ctx, cfg, appOptions{}, log)
	if err != nil {
		return err
	}
	ln, err := listen(cfg.Listen)
	if err != nil {
		_ = a.store.Close()
		return err
	}
	return a.run(ctx, ln)
}
