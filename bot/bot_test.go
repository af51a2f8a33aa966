package bot

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDispatcherBoundsAndDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	var done atomic.Int32
	h := HandlerFunc(func(ctx context.Context, cmd Command) {
		started <- struct{}{}
		<-release
		done.Add(1)
	})
	d := NewDispatcher(context.Background(), h, 2, 1)
	for i := 0; i < 2; i++ {
		if !d.Submit(Command{Text: "x"}) {
			t.Fatalf("submit %d refused", i)
		}
	}
	<-started
	<-started // both workers busy
	if !d.Submit(Command{Text: "queued"}) {
		t.Fatal("the queue slot was refused")
	}
	if d.Submit(Command{Text: "overflow"}) {
		t.Fatal("a full dispatcher accepted a command")
	}
	close(release)
	d.Close()
	if got := done.Load(); got != 3 {
		t.Fatalf("%d commands finished, want the 3 accepted", got)
	}
	if d.Submit(Command{Text: "late"}) {
		t.Fatal("a closed dispatcher accepted a command")
	}
	d.Close() // twice is fine
}

func TestDispatcherConcurrentSubmitAndClose(t *testing.T) {
	var n atomic.Int32
	d := NewDispatcher(context.Background(), HandlerFunc(func(context.Context, Command) { n.Add(1) }), 4, 16)
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if d.Submit(Command{}) {
					accepted.Add(1)
				}
			}
		}()
	}
	go d.Close()
	wg.Wait()
	d.Close()
	if n.Load() != accepted.Load() {
		t.Fatalf("ran %d of %d accepted commands", n.Load(), accepted.Load())
	}
}

func TestPlainTextAndThreads(t *testing.T) {
	m := Message{
		Title:    "Approval needed",
		Text:     "Alice asks",
		Sections: []Section{{Title: "Settings", Severity: SeverityBlocker, Facts: []Fact{{Name: "Security defaults", Value: "true → false"}}}},
		Buttons:  []Button{{Label: "Approve", Command: "approve r-1", Style: StylePrimary}},
		Footer:   "12 hours",
	}
	want := "Approval needed\nAlice asks\n[blocker] Settings\nSecurity defaults: true → false\n[Approve] → approve r-1\n12 hours"
	if got := m.PlainText(); got != want {
		t.Fatalf("PlainText:\n%s\nwant:\n%s", got, want)
	}
	conv := Conversation{Platform: Slack, ID: "C1"}
	card := MessageRef{Conv: conv, ID: "111.1"}
	if got := conv.InThread(card); got.Thread != "111.1" || got.Key() != "slack:C1" {
		t.Fatalf("InThread = %+v", got)
	}
	// A card that itself sits in a thread keeps that thread.
	card.Conv.Thread = "100.0"
	if got := conv.InThread(card); got.Thread != "100.0" {
		t.Fatalf("InThread in thread = %+v", got)
	}
	if (User{ID: "U1"}).Label() != "U1" || !strings.Contains(SeverityWarning.String(), "warning") {
		t.Fatal("labels")
	}
}
