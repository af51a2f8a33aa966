package sandbox

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// send is call for a request that may not be answered: it returns the
// status, or the client's error once ctx ends.
func send(ctx context.Context, s *Server, method, path, tok string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL()+"/v1.0"+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.Client().Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

const (
	legacyOn  = `{"isLegacyAuthProtocolsEnabled":true}`
	legacyOff = `{"isLegacyAuthProtocolsEnabled":false}`
)

func TestHoldSkipsAndHoldsTheAnswerOfALandedWrite(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	h := s.HoldRequest(HoldSpec{Method: "PATCH", PathPrefix: "/admin/sharepoint", Skip: 1, Landed: true})
	// The first matching request is let through.
	if r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(legacyOn)); r.status != 200 {
		t.Fatalf("skipped request: %d", r.status)
	}
	done := make(chan int, 1)
	go func() {
		st, _ := send(context.Background(), s, "PATCH", "/admin/sharepoint/settings", tok, []byte(legacyOff))
		done <- st
	}()
	<-h.Arrived()
	// Served already: the write landed while its answer is held.
	if s.State().LegacyAuth {
		t.Fatal("a Landed hold did not serve the request before holding it")
	}
	select {
	case <-done:
		t.Fatal("answered before release")
	case <-time.After(50 * time.Millisecond):
	}
	h.Release()
	if st := <-done; st != 200 {
		t.Fatalf("after release: %d", st)
	}
}

func TestHeldRequestOfAClientThatLeftIsDropped(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	h := s.HoldRequest(HoldSpec{Method: "PATCH", PathPrefix: "/admin/sharepoint"})
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := send(ctx, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(legacyOn))
		errs <- err
	}()
	<-h.Arrived()
	cancel()
	select {
	case <-h.Gone():
	case <-time.After(10 * time.Second):
		t.Fatal("the client's departure was not noticed")
	}
	h.Release()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	// Dropped: never served, whatever the order of events.
	time.Sleep(50 * time.Millisecond)
	if s.State().LegacyAuth || len(s.History()) != 0 {
		t.Fatalf("a request whose client left was served: %+v", s.History())
	}
}

func TestLateHoldLandsAfterTheClientLeft(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	h := s.HoldRequest(HoldSpec{Method: "PATCH", PathPrefix: "/admin/sharepoint", Late: true})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = send(ctx, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(legacyOn)) }()
	<-h.Arrived()
	cancel()
	<-h.Gone()
	if s.State().LegacyAuth {
		t.Fatal("served before release")
	}
	h.Release()
	deadline := time.Now().Add(10 * time.Second)
	for !s.State().LegacyAuth {
		if time.Now().After(deadline) {
			t.Fatal("a late hold did not serve the request after its client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHangRule(t *testing.T) {
	for _, landed := range []bool{false, true} {
		s := start(t, Options{})
		tok := token(t, s)
		s.Fail(FailRule{Method: "PATCH", PathPrefix: "/admin/sharepoint", Hang: true, Landed: landed, Times: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := send(ctx, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(legacyOn))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("landed=%v: a hanging request was answered (%v)", landed, err)
		}
		if s.State().LegacyAuth != landed {
			t.Fatalf("landed=%v: legacy auth %v after the hang", landed, s.State().LegacyAuth)
		}
		// Times: 1, so the next one is served.
		if r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(legacyOn)); r.status != 200 {
			t.Fatalf("after the hang: %d", r.status)
		}
	}
}

func TestTokenEndpointOutage(t *testing.T) {
	s := start(t, Options{TokenLifetime: time.Minute})
	s.FailTokens(FailRule{Times: 2})
	for range 2 {
		status, out := postForm(t, s, s.opts.TenantID, secretForm(s))
		if status != http.StatusServiceUnavailable || out["error"] != "temporarily_unavailable" {
			t.Fatalf("during the outage: %d %v", status, out)
		}
	}
	if n := s.FailuresLeft(); n != 0 {
		t.Fatalf("%d rules still armed after their Times", n)
	}
	status, out := postForm(t, s, s.opts.TenantID, secretForm(s))
	if status != http.StatusOK || out["expires_in"] != float64(60) {
		t.Fatalf("after the outage: %d %v", status, out)
	}
}

func TestHistoryCountsEffectiveWrites(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	for _, b := range []string{legacyOn, legacyOn, legacyOff} {
		if r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(b)); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	h := s.History()
	if len(h) != 2 || !h[0].State.LegacyAuth || h[1].State.LegacyAuth || h[0].Source != "graph PATCH sharepoint settings" {
		t.Fatalf("history %+v; want the two writes that changed something", h)
	}
	if s.Initial().LegacyAuth != DefaultState().LegacyAuth {
		t.Fatal("Initial is not the starting state")
	}
}
