package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/store/postgres"
	"github.com/c2bot/c2bot/store/postgres/pgtest"
	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// Scale of BenchmarkScale: pending reverts in the store, and how many of
// them come due while the scheduler runs, spread over dueSpread.
const (
	scalePending = 100_000
	scaleDue     = 500
	dueSpread    = 20 * time.Second
)

// BenchmarkScale measures the scheduler on a store holding 100,000 applied
// requests waiting for their revert, on bbolt and on PostgreSQL, through the
// real core, the production Graph client and the sandbox tenant. Run it once:
//
//	go test -run '^$' -bench BenchmarkScale -benchtime 1x ./handlers/
//
// It reports start-up time (open the store, recover, first NextDue), the
// cost of one scheduler wake-up (NextDue + Due), revert lateness p50/p99
// (RevertedAt minus the due time, for 500 reverts due over 20 s),
// transitions per second (one goroutine and eight), and heap and database
// bytes per pending request. BENCHMARKS.md has the figures.
func BenchmarkScale(b *testing.B) {
	b.Run("bbolt", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "c2bot.db")
		benchScale(b, func() (store.Backend, error) { return store.Open(path, store.Options{}) }, func() int64 {
			fi, err := os.Stat(path)
			if err != nil {
				return 0
			}
			return fi.Size()
		})
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := pgtest.Database(b)
		benchScale(b, func() (store.Backend, error) {
			return postgres.Open(context.Background(), dsn, store.Options{})
		}, func() int64 { return pgSize(b, dsn) })
	})
}

// pgSize is the size of the c2bot tables with their indexes.
func pgSize(b *testing.B, dsn string) int64 {
	st, err := postgres.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	n, err := st.TableBytes(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func benchScale(b *testing.B, open func() (store.Backend, error), size func() int64) {
	ctx := context.Background()
	start := time.Now()
	items := json.RawMessage(`[{"kind":"security_defaults","before":"true","after":"false"}]`)
	conv := json.RawMessage(`{"platform":"web","id":"console"}`)
	// 100,000 applied requests due in 1–72 h; scaleDue of them are made due
	// soon once the scheduler is about to run.
	d := store.Dump{}
	for i := 1; i <= scalePending; i++ {
		due := start.Add(time.Hour + time.Duration(rand.Int64N(int64(71*time.Hour))))
		d.Requests = append(d.Requests, store.Request{ID: fmt.Sprint("r-", i), Tenant: "sandbox", State: store.Applied,
			Requester: store.Person{ID: "alice"}, Approver: store.Person{ID: "bob"}, Duration: time.Hour,
			CreatedAt: start, AppliedAt: start, RevertAt: due, DueAt: due, Items: items, Conv: conv})
	}
	st, err := open()
	if err != nil {
		b.Fatal(err)
	}
	if err := st.(store.Importer).Import(ctx, d); err != nil {
		b.Fatal(err)
	}
	d = store.Dump{}
	st.Close()
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)

	sb, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	cl, err := tenant.New(tenant.Config{
		TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret,
		GraphURL: sb.URL(), AuthorityURL: sb.URL(), HTTPClient: sb.Client(), MaxRetries: 1,
	})
	if err != nil {
		b.Fatal(err)
	}

	var finished atomic.Int64
	// Start-up: open, recover, first look at the due index.
	t0 := time.Now()
	st, err = open()
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	core, err := handlers.New(handlers.Config{
		Tenants: []handlers.TenantConfig{{Name: "sandbox", Client: cl, Approvers: []string{"bob"}}},
		Senders: []bot.Sender{newChat()}, Store: st, Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(action string) {
			if action == "reverted" || action == "revert_failed" {
				finished.Add(1)
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := core.Recover(ctx); err != nil {
		b.Fatal(err)
	}
	if _, _, err := st.NextDue(ctx); err != nil {
		b.Fatal(err)
	}
	startup := time.Since(t0)
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)

	// One wake-up with nothing due yet: NextDue and Due.
	const wakes = 200
	t0 = time.Now()
	for range wakes {
		if _, _, err := st.NextDue(ctx); err != nil {
			b.Fatal(err)
		}
		if due, err := st.Due(ctx, time.Now()); err != nil || len(due) != 0 {
			b.Fatalf("due at start: %d %v", len(due), err)
		}
	}
	wake := time.Since(t0) / wakes

	// Lateness: make scaleDue requests due over dueSpread from a few
	// seconds ahead (the scheduler learns of it as of any new due time),
	// run the scheduler until they are reverted.
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = core.Run(runCtx) })
	first := time.Now().Add(5 * time.Second)
	for i := 1; i <= scaleDue; i++ {
		due := first.Add(time.Duration(i) * dueSpread / scaleDue)
		if _, err := st.Transition(ctx, fmt.Sprint("r-", i), []store.State{store.Applied}, func(r *store.Request, _ *store.Changes) error {
			r.DueAt, r.RevertAt = due, due
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if time.Now().After(first) {
		b.Logf("setting the due times took past the first one; lateness includes %s", time.Since(first))
	}
	deadline := first.Add(dueSpread + 5*time.Minute)
	for finished.Load() < scaleDue {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d reverts done five minutes after the last due time", finished.Load(), scaleDue)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	var late []time.Duration
	for i := 1; i <= scaleDue; i++ {
		r, err := st.Get(ctx, fmt.Sprint("r-", i))
		if err != nil {
			b.Fatal(err)
		}
		if r.State != store.Reverted {
			b.Fatalf("%s is %s: %s", r.ID, r.State, r.LastError)
		}
		late = append(late, r.RevertedAt.Sub(r.RevertAt))
	}
	slices.Sort(late)

	// Transitions: move the due time of a random pending request.
	tr := func(workers, n int) float64 {
		t0 := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range n / workers {
					id := fmt.Sprint("r-", scaleDue+1+rand.IntN(scalePending-scaleDue))
					if _, err := st.Transition(ctx, id, []store.State{store.Applied}, func(r *store.Request, ch *store.Changes) error {
						r.DueAt = r.DueAt.Add(time.Second)
						r.RevertAt = r.DueAt
						ch.Audit = append(ch.Audit, store.Event{Actor: "bench", Action: "extended"})
						return nil
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return float64(n) / time.Since(t0).Seconds()
	}
	tps1 := tr(1, 1000)
	tps8 := tr(8, 2000)

	b.ReportMetric(startup.Seconds()*1000, "startup-ms")
	b.ReportMetric(float64(wake.Microseconds()), "wakeup-µs")
	b.ReportMetric(late[len(late)/2].Seconds()*1000, "late-p50-ms")
	b.ReportMetric(late[len(late)*99/100].Seconds()*1000, "late-p99-ms")
	b.ReportMetric(late[len(late)-1].Seconds()*1000, "late-max-ms")
	b.ReportMetric(tps1, "transitions/s")
	b.ReportMetric(tps8, "transitions/s-8")
	b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/scalePending, "heap-B/pending")
	b.ReportMetric(float64(size())/scalePending, "db-B/pending")
}
