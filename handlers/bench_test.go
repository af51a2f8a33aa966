package handlers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
)

// BenchmarkRequestApplyRevert measures one whole cycle on the default
// scenario — fix (a diagnosis), approve (snapshot, commit, the PATCH,
// read-back), revert (the restore) and the outbox deliveries — through the
// production Graph client and MSAL against the sandbox tenant and a real
// bbolt file.
func BenchmarkRequestApplyRevert(b *testing.B) {
	e := newEnv(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.core.Handle(e.ctx, bot.Command{User: alice, Conv: room, Text: "fix --for 1h"})
		id := fmt.Sprintf("r-%d", i+1)
		e.core.Handle(e.ctx, bot.Command{User: bob, Conv: room, Text: "approve " + id})
		e.clock.Advance(time.Hour + time.Second)
		if err := e.core.RunDue(e.ctx); err != nil {
			b.Fatal(err)
		}
		if err := e.core.Flush(e.ctx); err != nil {
			b.Fatal(err)
		}
		if r := e.request(id); r.State != "reverted" {
			b.Fatalf("%s is %s", id, r.State)
		}
	}
}
