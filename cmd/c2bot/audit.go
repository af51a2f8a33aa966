package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/store/postgres"
)

// auditLockTimeout is how long `c2bot audit` waits for the database file.
const auditLockTimeout = 2 * time.Second

// auditColumns are the CSV columns of `c2bot audit --format csv`.
var auditColumns = []string{"seq", "at", "tenant", "request_id", "actor", "action", "detail"}

// cmdAudit writes the audit log from the database: every event, or those of
// one tenant, one request or a recent period, as JSON or CSV.
//
// bbolt lets one process write a file, or several read it, never both: it
// opens the file read-only with a shared lock, which fails within two
// seconds, with a message saying so, while `c2bot serve` runs on it. Export
// from a stopped instance or from a copy (bbolt's online backup, or a file
// copy taken while serve is stopped); or read the audit log lines
// (event=audit) serve writes to its log.
func cmdAudit(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var format, tenantName, since, request string
	cfg, fs, err := parseConfig("audit", argv, stderr, getenv, defaults(), func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "json", "json or csv")
		fs.StringVar(&tenantName, "tenant", "", "only this tenant's events")
		fs.StringVar(&since, "since", "", "only events this recent (30d, 12h) or since a time (RFC 3339)")
		fs.StringVar(&request, "request", "", "only this request's events (r-12)")
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("audit takes no arguments (got %q)", fs.Arg(0))}
	}
	if format != "json" && format != "csv" {
		return usageError{fmt.Sprintf("--format must be json or csv, not %q", format)}
	}
	f := store.AuditFilter{RequestID: strings.ToLower(strings.TrimSpace(request))}
	if tenantName != "" {
		f.Tenants = []string{strings.ToLower(strings.TrimSpace(tenantName))}
	}
	if since != "" {
		if at, err := time.Parse(time.RFC3339, since); err == nil {
			f.Since = at
		} else if d, err := parseDuration(since); err == nil {
			f.Since = time.Now().Add(-d)
		} else {
			return usageError{fmt.Sprintf("--since %q is neither a duration (30d, 12h) nor an RFC 3339 time", since)}
		}
	}
	var st interface {
		ListAudit(context.Context, store.AuditFilter) ([]store.Event, error)
		Close() error
	}
	if postgres.IsURL(cfg.DB) {
		// Replicas may run meanwhile: PostgreSQL lets readers and writers share.
		oc, cancel := context.WithTimeout(ctx, storeOpenTimeout)
		st, err = postgres.Open(oc, cfg.DB, store.Options{ReadOnly: true})
		cancel()
	} else {
		st, err = store.Open(cfg.DB, store.Options{ReadOnly: true, LockTimeout: auditLockTimeout})
	}
	if err != nil {
		return err
	}
	defer st.Close()
	events, err := st.ListAudit(ctx, f)
	if err != nil {
		return err
	}
	if format == "csv" {
		return writeAuditCSV(stdout, events)
	}
	return writeAuditJSON(stdout, events)
}

// writeAuditJSON writes events as one JSON array, one event a line.
func writeAuditJSON(w io.Writer, events []store.Event) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i, e := range events {
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		sep := ",\n"
		if i == 0 {
			sep = "\n"
		}
		if _, err := fmt.Fprintf(w, "%s%s", sep, raw); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}

// writeAuditCSV writes events as RFC 4180 CSV with a header row. A cell
// that a spreadsheet would take for a formula (=, +, -, @ first) gets a
// leading apostrophe, since a reason is free text.
func writeAuditCSV(w io.Writer, events []store.Event) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(auditColumns); err != nil {
		return err
	}
	for _, e := range events {
		row := []string{strconv.FormatUint(e.Seq, 10), e.At.UTC().Format(time.RFC3339Nano), e.Tenant, e.RequestID, e.Actor, e.Action, e.Detail}
		for i, v := range row {
			if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
				row[i] = "'" + v
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
