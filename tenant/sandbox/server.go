package sandbox

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxBody bounds a request body, before and after gzip.
const maxBody = 1 << 20

// reqIDs are the correlation ids of one request, echoed in headers and error
// bodies as Graph does.
type reqIDs struct {
	requestID       string
	clientRequestID string
}

func (s *Server) routes() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	ids := reqIDs{requestID: newGUID()}
	ids.clientRequestID = r.Header.Get("client-request-id")
	if ids.clientRequestID == "" {
		ids.clientRequestID = ids.requestID
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("request-id", ids.requestID)
	h.Set("client-request-id", ids.clientRequestID)
	h.Set("Cache-Control", "no-store, no-cache")

	if r.URL.Path == "/v1.0" || strings.HasPrefix(r.URL.Path, "/v1.0/") ||
		r.URL.Path == "/beta" || strings.HasPrefix(r.URL.Path, "/beta/") {
		s.serveGraph(w, r, ids)
		return
	}
	if !s.sleep(r, s.currentLatency()) {
		return
	}
	s.serveEntra(w, r, ids)
}

func (s *Server) currentLatency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latency
}

// sleep waits d; false when the request or the server ended first.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

// readBody returns the request body with any gzip Content-Encoding undone.
func readBody(r *http.Request) (body []byte, encoding string, err error) {
	encoding = r.Header.Get("Content-Encoding")
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, encoding, fmt.Errorf("read body: %w", err)
	}
	if len(raw) > maxBody {
		return nil, encoding, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return raw, encoding, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, encoding, fmt.Errorf("gzip body: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxBody+1))
		if err != nil {
			return nil, encoding, fmt.Errorf("gzip body: %w", err)
		}
		if len(out) > maxBody {
			return nil, encoding, fmt.Errorf("body larger than %d bytes", maxBody)
		}
		return out, encoding, nil
	default:
		return nil, encoding, fmt.Errorf("unsupported Content-Encoding %q", encoding)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// graphErrorBody is Graph's error envelope (concepts/errors.md).
type graphErrorBody struct {
	Error graphError `json:"error"`
}

type graphError struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	InnerError graphInnerError `json:"innerError"`
}

type graphInnerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

// graphDate is the innerError date format ("2020-08-18T12:51:51").
const graphDate = "2006-01-02T15:04:05"

func (s *Server) graphError(w http.ResponseWriter, ids reqIDs, status int, code, message string) {
	if code == "" {
		code = defaultCode(status)
	}
	if message == "" {
		message = defaultMessage(status)
	}
	writeJSON(w, status, graphErrorBody{Error: graphError{
		Code:    code,
		Message: message,
		InnerError: graphInnerError{
			Date:            s.opts.Now().UTC().Format(graphDate),
			RequestID:       ids.requestID,
			ClientRequestID: ids.clientRequestID,
		},
	}})
}

// tooManyRequests writes the 429 body of concepts/throttling.md.
func (s *Server) tooManyRequests(w http.ResponseWriter, ids reqIDs, code string) {
	if code == "" {
		code = "TooManyRequests"
	}
	type inner struct {
		Code      string `json:"code"`
		Date      string `json:"date"`
		Message   string `json:"message"`
		RequestID string `json:"request-id"`
		Status    string `json:"status"`
	}
	type body struct {
		Code       string `json:"code"`
		InnerError inner  `json:"innerError"`
		Message    string `json:"message"`
	}
	writeJSON(w, http.StatusTooManyRequests, map[string]body{"error": {
		Code: code,
		InnerError: inner{
			Code:      "429",
			Date:      s.opts.Now().UTC().Format(graphDate),
			Message:   "Please retry after",
			RequestID: ids.requestID,
			Status:    "429",
		},
		Message: "Please retry again later.",
	}})
}

func defaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken"
	case http.StatusForbidden:
		return "Authorization_RequestDenied"
	case http.StatusNotFound:
		return "Request_ResourceNotFound"
	case http.StatusMethodNotAllowed:
		return "Request_BadRequest"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusInternalServerError:
		return "generalException"
	case http.StatusBadGateway:
		return "badGateway"
	case http.StatusServiceUnavailable:
		return "serviceNotAvailable"
	case http.StatusGatewayTimeout:
		return "gatewayTimeout"
	}
	return "UnknownError"
}

func defaultMessage(status int) string {
	switch status {
	case http.StatusForbidden:
		return "Insufficient privileges to complete the operation."
	case http.StatusTooManyRequests:
		return "Please retry again later."
	case http.StatusServiceUnavailable:
		return "The service is temporarily unavailable. Please retry later."
	}
	return http.StatusText(status)
}

// newGUID is a random version 4 GUID.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return formatGUID(b)
}

// stableGUID derives a GUID from its parts, so generated objects keep their
// ids between requests.
func stableGUID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	var b [16]byte
	copy(b[:], sum[:16])
	return formatGUID(b)
}

func formatGUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// isGUID reports whether v looks like 8-4-4-4-12 hex digits.
func isGUID(v string) bool {
	if len(v) != 36 {
		return false
	}
	for i, c := range v {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// orderedObject marshals its fields in order (Graph puts @odata.context first).
type orderedObject []field

type field struct {
	key   string
	value any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
