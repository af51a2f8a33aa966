package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// pingEvery keeps the client's ping watchdog (30 s by default) happy.
const pingEvery = 5 * time.Second

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveSocket accepts one Socket Mode client at a time, greets it with
// "hello" and records the acknowledgements it sends.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.conn = conn
	s.notifyLocked()
	s.mu.Unlock()

	_ = s.write(conn, map[string]any{
		"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": "A0C2TEST"},
		"debug_info":      map[string]any{"host": "slacktest"},
	})
	s.wg.Add(1)
	go s.pinger(conn)
	for {
		var resp struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := conn.ReadJSON(&resp); err != nil {
			break
		}
		s.mu.Lock()
		if resp.EnvelopeID != "" {
			if resp.Payload == nil {
				resp.Payload = json.RawMessage("null")
			}
			s.acks[resp.EnvelopeID] = resp.Payload
			s.notifyLocked()
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	s.notifyLocked()
	s.mu.Unlock()
	_ = conn.Close()
}

func (s *Server) pinger(conn *websocket.Conn) {
	defer s.wg.Done()
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.writeMu.Lock()
			err := conn.WriteControl(websocket.PingMessage, []byte("slacktest"), time.Now().Add(time.Second))
			s.writeMu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

func (s *Server) write(conn *websocket.Conn, v any) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return conn.WriteJSON(v)
}

// Envelope types a Socket Mode client receives.
const (
	EnvelopeSlashCommand = "slash_commands"
	EnvelopeInteractive  = "interactive"
	EnvelopeEventsAPI    = "events_api"
)

// SendEnvelope waits for a Socket Mode client, sends it an envelope of
// type typ carrying payload (retryAttempt > 0 marks a redelivery), and
// returns the envelope id to pass to WaitAck.
func (s *Server) SendEnvelope(ctx context.Context, typ string, payload any, retryAttempt int) (string, error) {
	var conn *websocket.Conn
	if err := s.wait(ctx, func() bool { conn = s.conn; return conn != nil }); err != nil {
		return "", fmt.Errorf("no socket mode client: %w", err)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.envSeq++
	id := fmt.Sprintf("env-%04d", s.envSeq)
	s.mu.Unlock()
	env := map[string]any{
		"envelope_id":              id,
		"type":                     typ,
		"payload":                  json.RawMessage(raw),
		"accepts_response_payload": typ == EnvelopeSlashCommand,
		"retry_attempt":            retryAttempt,
	}
	if err := s.write(conn, env); err != nil {
		return "", fmt.Errorf("send envelope: %w", err)
	}
	return id, nil
}

// WaitAck waits for the client's acknowledgement of envelopeID and returns
// its payload ("null" when it had none).
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (json.RawMessage, error) {
	var p json.RawMessage
	err := s.wait(ctx, func() bool {
		var ok bool
		p, ok = s.acks[envelopeID]
		return ok
	})
	return p, err
}

// Disconnect asks the connected Socket Mode client to reconnect, as Slack
// does every few hours.
func (s *Server) Disconnect() error {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return errors.New("no socket mode client")
	}
	return s.write(conn, map[string]any{"type": "disconnect", "reason": "refresh_requested"})
}
