package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startNoThrottle starts a sandbox with the Conditional Access throttle off,
// for tests that are not about throttling.
func startNoThrottle(t *testing.T, opts Options) *Server {
	s := start(t, opts)
	s.SetCAThrottle(false)
	return s
}

// postForm calls the token endpoint.
func postForm(t *testing.T, s *Server, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.Client().PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	return resp.StatusCode, out
}

func secretForm(s *Server) url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.opts.ClientID},
		"client_secret": {s.opts.ClientSecret},
		"scope":         {s.URL() + "/.default"},
	}
}

// token gets an access token with the client secret.
func token(t *testing.T, s *Server) string {
	t.Helper()
	status, out := postForm(t, s, s.opts.TenantID, secretForm(s))
	if status != http.StatusOK {
		t.Fatalf("token: status %d %v", status, out)
	}
	return out["access_token"].(string)
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// call sends a Graph request; tok "" sends no Authorization header.
func call(t *testing.T, s *Server, method, path, tok string, body []byte, hdr ...string) result {
	t.Helper()
	target := path
	if !strings.HasPrefix(path, "https://") {
		target = s.URL() + "/v1.0" + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNoContent && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if resp.Header.Get("request-id") == "" || resp.Header.Get("client-request-id") == "" {
		t.Errorf("%s %s: missing request-id/client-request-id headers", method, path)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return v
}

// keyPaths lists every object key path in v; array elements share "[]".
func keyPaths(v any, prefix string, out map[string]bool) map[string]bool {
	if out == nil {
		out = map[string]bool{}
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out[prefix+k] = true
			keyPaths(e, prefix+k+".", out)
		}
	case []any:
		for _, e := range x {
			keyPaths(e, prefix+"[].", out)
		}
	}
	return out
}

// diffKeys returns the key paths only in want and only in got, skipping the
// ignored top-level annotations.
func diffKeys(got, want any, ignore ...string) (missing, extra []string) {
	g, w := keyPaths(got, "", nil), keyPaths(want, "", nil)
	skip := func(k string) bool {
		for _, i := range ignore {
			if k == i || strings.HasPrefix(k, i+".") {
				return true
			}
		}
		return false
	}
	for k := range w {
		if !g[k] && !skip(k) {
			missing = append(missing, k)
		}
	}
	for k := range g {
		if !w[k] && !skip(k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

func sameKeys(t *testing.T, what string, got, want any, ignore ...string) {
	t.Helper()
	missing, extra := diffKeys(got, want, ignore...)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: keys differ from the fixture: missing %v, extra %v", what, missing, extra)
	}
}

// graphErrorCode checks Graph's error shape and returns the code.
func graphErrorCode(t *testing.T, r result) string {
	t.Helper()
	body := decode(t, r.body)
	missing, _ := diffKeys(body, decode(t, fixture(t, "error_generic_shape.json")))
	if len(missing) > 0 {
		t.Errorf("error body %s lacks %v", r.body, missing)
	}
	e, _ := body.(map[string]any)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}
