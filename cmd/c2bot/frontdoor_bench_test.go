package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	slackbot "github.com/c2bot/c2bot/bot/slack"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
	"github.com/c2bot/c2bot/store/postgres/pgtest"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// Load of BenchmarkSlackFrontDoor: frontDoorCommands signed slash commands
// from frontDoorSenders connections at once, as fast as c2bot answers.
const (
	frontDoorCommands = 1500
	frontDoorSenders  = 48
)

// BenchmarkSlackFrontDoor drives the real binary in Slack HTTP mode with a
// burst of signed "/c2 status" commands (each a diagnosis-free command that
// reads the store and posts one message to the fake Slack), on bbolt and on
// PostgreSQL. Run it once:
//
//	go test -run '^$' -bench SlackFrontDoor -benchtime 1x ./cmd/c2bot/
//
// It reports acknowledgements per second and their p50/p99 latency, how many
// commands were turned away with "busy", and commands completed per second
// (answers posted) for those accepted.
func BenchmarkSlackFrontDoor(b *testing.B) {
	b.Run("bbolt", func(b *testing.B) { benchFrontDoor(b, filepath.Join(b.TempDir(), "c2bot.db")) })
	b.Run("postgres", func(b *testing.B) { benchFrontDoor(b, pgtest.Database(b)) })
}

func benchFrontDoor(b *testing.B, db string) {
	sb, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	ca := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, sb.CertPEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	fake := slacktest.NewServer()
	defer fake.Close()
	addr := freeAddrB(b)
	env := map[string]string{
		"C2_LISTEN": addr, "C2_DB": db, "C2_TENANT_NAME": "sandbox", "C2_TENANT_ID": sandbox.DefaultTenantID,
		"C2_CLIENT_ID": sandbox.DefaultClientID, "C2_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"C2_GRAPH_URL": sb.URL(), "C2_AUTHORITY_URL": sb.URL(), "C2_CA_FILE": ca, "C2_TOOL_ACCOUNT": sandbox.DefaultToolAccount,
		"C2_APPROVERS": slackApprover, "C2_CONSOLE": "false", "C2_LOG_LEVEL": "warn",
		"C2_SLACK_BOT_TOKEN": slacktest.BotToken, "C2_SLACK_API_URL": fake.APIURL(), "C2_SLACK_SIGNING_SECRET": slackSecret,
	}
	cmd := exec.Command(binary, "serve")
	cmd.Env = childEnv(env)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := "http://" + addr
	ready := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(50 * time.Millisecond) {
		req := slacktest.NewSlashCommandRequest(url+slackbot.PathCommands, slackSecret, time.Now(), slacktest.SlashCommand{
			ChannelID: slackChannel, UserID: slackRequester, UserName: "alice", Text: "help", TriggerID: "warm"})
		_, err := sendSigned(req)
		ready = err == nil
	}
	if !ready {
		b.Fatalf("c2bot did not start:\n%s", logs.String())
	}

	var (
		mu   sync.Mutex
		acks []time.Duration
		busy int
		fail int
	)
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range frontDoorSenders {
		wg.Go(func() {
			for i := range work {
				req := slacktest.NewSlashCommandRequest(url+slackbot.PathCommands, slackSecret, time.Now(), slacktest.SlashCommand{
					ChannelID: slackChannel, UserID: slackRequester, UserName: "alice", Text: "status", TriggerID: fmt.Sprint("load.", i)})
				t0 := time.Now()
				body, err := sendSigned(req)
				d := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					fail++
				case strings.Contains(string(body), "busy"):
					busy++
					acks = append(acks, d)
				default:
					acks = append(acks, d)
				}
				mu.Unlock()
			}
		})
	}
	for i := range frontDoorCommands {
		work <- i
	}
	close(work)
	wg.Wait()
	fired := time.Since(start)
	accepted := len(acks) - busy
	isStatus := func(m slacktest.Message) bool { return m.Channel == slackChannel && headerTitle(m) == "Open requests" }
	answered := func() int {
		n := 0
		for _, m := range fake.Messages(slackChannel) {
			if isStatus(m) {
				n++
			}
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for answered() < accepted && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	done := time.Since(start)
	slices.Sort(acks)
	if len(acks) == 0 {
		b.Fatalf("no acknowledgement (%d failed):\n%s", fail, logs.String())
	}
	b.ReportMetric(float64(len(acks))/fired.Seconds(), "acks/s")
	b.ReportMetric(acks[len(acks)/2].Seconds()*1000, "ack-p50-ms")
	b.ReportMetric(acks[len(acks)*99/100].Seconds()*1000, "ack-p99-ms")
	b.ReportMetric(float64(busy), "busy")
	b.ReportMetric(float64(fail), "failed")
	b.ReportMetric(float64(answered())/done.Seconds(), "completed/s")
}

// freeAddrB is freeAddr for a benchmark.
func freeAddrB(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
