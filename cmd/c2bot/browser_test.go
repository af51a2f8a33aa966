package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/c2bot/c2bot/tenant/sandbox"
)

// chromiumPath is where Debian's chromium package puts the browser
// (.ci/browser.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// TestConsoleInBrowser drives the local console of `c2bot demo` in a headless
// Chromium as a person would: Alice diagnoses the sandbox tenant and asks for
// the temporary fix, Bob approves it on the card, and the page shows the
// change applied and then reverted through its live stream without a reload.
// A click on Approve by Alice, who is no approver, must leave the card pending
// and tell her why.
func TestConsoleInBrowser(t *testing.T) {
	needChromium(t)

	dir := t.TempDir()
	env := map[string]string{
		"C2_LISTEN":           freeAddr(t),
		"C2_DB":               filepath.Join(dir, "c2bot.db"),
		"C2_DEFAULT_DURATION": "8s",
		"C2_MIN_DURATION":     "1s",
	}
	p := startBot(t, env, "demo")

	b := newBrowser(t)
	b.do("open the console",
		chromedp.Navigate(p.url+"/?user=alice"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="command-input"]`)),
	)
	if title := b.text(`[data-testid="title"]`); title != "c2bot console — sandbox tenant" {
		t.Errorf("page heading = %q", title)
	}
	// A value that lives only as long as this page: gone after any reload.
	const pageMark = "c2bot-browser-test"
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__c2PageMark = "`+pageMark+`"`))
	b.waitUser("alice", "Alice")

	// Alice asks for a diagnosis by typing the command and pressing Send.
	b.do("type /c2 diagnose",
		chromedp.SendKeys(chromedp.CSS(`[data-testid="command-input"]`), "/c2 diagnose"),
		chromedp.Click(chromedp.CSS(`[data-testid="send"]`)),
	)
	b.waitFor("Alice's command in the transcript", `(() => {
		const m = [...document.querySelectorAll('[data-testid="message"][data-kind="user"]')]
			.find((m) => m.dataset.author === 'alice' && m.dataset.text === '/c2 diagnose');
		return m ? m.dataset.id : '';
	})()`)
	if v := b.eval(`document.querySelector('[data-testid="command-input"]').value`); v != "" {
		t.Errorf("command box still holds %q after Send", v)
	}
	findings := b.waitFor("the findings (Security defaults blocker, sign-ins failing with 50076)", `(() => {
		for (const m of document.querySelectorAll('[data-testid="message"][data-kind="bot"]')) {
			const blockers = [...m.querySelectorAll('[data-testid="section"][data-severity="blocker"]')];
			const sd = blockers.some((s) => /Security defaults/.test(s.textContent));
			const signins = blockers.some((s) => [...s.querySelectorAll('[data-testid="fact"]')]
				.some((f) => f.textContent.includes('50076')));
			const fix = m.querySelector('[data-testid="button"][data-label="Request temporary fix"]');
			if (sd && signins && fix) return m.dataset.id;
		}
		return '';
	})()`)

	// Alice asks for the fix from the findings card.
	b.click(findings, "Request temporary fix")
	card := b.waitFor("the approval card", `(() => {
		const m = [...document.querySelectorAll('[data-testid="message"][data-kind="bot"]')]
			.find((m) => (m.querySelector('[data-testid="message-title"]') || {}).textContent?.startsWith('Approval needed'));
		return m && m.querySelector('[data-testid="button"][data-label="Approve"]') ? m.dataset.id : '';
	})()`)
	if got := b.attr(card, "data-text"); !strings.Contains(got, "Alice") || !strings.Contains(got, "8s") {
		t.Errorf("approval card does not name the requester and the 8s window:\n%s", got)
	}

	// Bob takes over the page and approves on the card.
	b.switchUser("bob", "Bob")
	b.waitFor("the approval card after the switch", cardTitled(card, "Approval needed"))
	b.click(card, "Approve")
	b.waitFor("the card reporting the change applied", `(() => {
		const m = document.querySelector('[data-testid="message"][data-id="`+card+`"]');
		return m && /^applied/i.test(m.dataset.text) ? m.dataset.version : '';
	})()`)
	b.waitFor("the card without buttons once applied", `(() => {
		const m = document.querySelector('[data-testid="message"][data-id="`+card+`"]');
		return m && m.querySelector('[data-testid="edited"]') && !m.querySelector('[data-testid="button"]') ? 'ok' : '';
	})()`)

	// The window is 8s; the revert arrives by the live stream alone.
	b.waitFor("the card reporting the revert", cardTitled(card, "Reverted"))
	notice := b.waitFor("the revert notice in the card's thread", `(() => {
		const card = document.querySelector('[data-testid="message"][data-id="`+card+`"]');
		if (!card) return '';
		const r = [...card.querySelectorAll('[data-testid="thread"] [data-testid="message"]')]
			.find((m) => m.dataset.thread === '`+card+`' && /reverted/i.test(m.dataset.text));
		return r && r.getClientRects().length > 0 ? r.dataset.id : '';
	})()`)
	if got := b.attr(notice, "data-text"); !strings.HasPrefix(got, "Reverted: sandbox is back to its original settings") {
		t.Errorf("revert notice = %q", firstLine(got))
	}
	if mark := b.eval(`String(window.__c2PageMark)`); mark != pageMark {
		t.Fatalf("the page was reloaded during the window (mark %q)", mark)
	}
	// Show the card from its title down for the person who looks at the picture.
	b.do("scroll to the card", chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="message"][data-id="`+card+`"]').scrollIntoView({ block: 'start' })`))
	b.screenshot("console-reverted.png")

	// A second request; Alice, no approver, clicks Approve on it.
	b.switchUser("alice", "Alice")
	b.click(findings, "Request temporary fix")
	second := b.waitFor("a second approval card", `(() => {
		const m = [...document.querySelectorAll('[data-testid="message"][data-kind="bot"]')]
			.find((m) => m.dataset.id !== '`+card+`' && (m.querySelector('[data-testid="message-title"]') || {}).textContent?.startsWith('Approval needed'));
		return m && m.querySelector('[data-testid="button"][data-label="Approve"]') ? m.dataset.id : '';
	})()`)
	version := b.attr(second, "data-version")
	b.click(second, "Approve")
	refusal := b.waitFor("the explanation shown to Alice", `(() => {
		const m = [...document.querySelectorAll('[data-testid="message"][data-ephemeral="true"]')]
			.find((m) => m.dataset.author === 'c2bot' && /not an approver/i.test(m.dataset.text));
		if (!m || m.getClientRects().length === 0) return '';
		const r = m.getBoundingClientRect();
		const box = document.querySelector('[data-testid="transcript"]').getBoundingClientRect();
		return r.bottom > box.top && r.top < box.bottom ? m.dataset.id : '';
	})()`)
	if got := b.text(`[data-testid="message"][data-id="` + refusal + `"] .only-you`); got != "Only visible to you" {
		t.Errorf("the refusal is not marked as only visible to Alice (%q)", got)
	}
	// The refusal arrived after the click was handled, so the card would have
	// changed by now; look again after a moment to be sure.
	time.Sleep(500 * time.Millisecond)
	if got := b.attr(second, "data-version"); got != version {
		t.Errorf("the card changed after a refused click: version %s → %s", version, got)
	}
	if got := b.text(`[data-testid="message"][data-id="` + second + `"] [data-testid="message-title"]`); !strings.HasPrefix(got, "Approval needed") {
		t.Errorf("card after a refused click is titled %q, want still pending", got)
	}
	if n := b.eval(`String(document.querySelectorAll('[data-testid="message"][data-id="` + second + `"] [data-testid="button"][data-label="Approve"]').length)`); n != "1" {
		t.Errorf("the pending card has %s Approve buttons, want 1", n)
	}
	for _, m := range p.messages(t, "bob") {
		if m.ID == refusal {
			t.Errorf("Bob can see Alice's refusal %s", m.ID)
		}
		if m.ID == second && !strings.HasPrefix(m.Message.Title, "Approval needed") {
			t.Errorf("the server reports the card as %q after a refused click", m.Message.Title)
		}
	}
	b.screenshot("console-refused.png")
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// needChromium skips the test without Chromium, or fails it when CI
// requires the browser.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("C2_REQUIRE_BROWSER") == "1" {
			t.Fatalf("C2_REQUIRE_BROWSER=1 but %s is missing (run .ci/browser.sh): %v", chromiumPath, err)
		}
		t.Skipf("%s is missing; run .ci/browser.sh (set C2_REQUIRE_BROWSER=1 to fail instead)", chromiumPath)
	}
}

// TestConsoleTodaysVerdicts drives the console on two of today's tenants.
// The vendor's case ends in "update the tool" with no button that could
// change the tenant, and fix asks for nothing. The MFA-policy case (a
// delegated tool reached through a nested group) ends in the scoped
// exclusion: the sandbox's policy excludes the tool's account while the
// change is applied and includes it again after the revert.
func TestConsoleTodaysVerdicts(t *testing.T) {
	needChromium(t)
	b := newBrowser(t)

	sb, env := sandboxScenarioEnv(t, "vendor-today")
	p := startBot(t, env, "serve")
	b.open(p.url, "alice", "Alice")
	b.command("/c2 diagnose")
	diag := b.waitFor("the diagnosis saying to update the tool", botMessage("Diagnosis for sandbox", "update the tool"))
	if n := b.eval(`String(document.querySelectorAll('[data-testid="message"][data-id="` + diag + `"] [data-testid="button"]').length)`); n != "0" {
		t.Errorf("the vendor's diagnosis has %s button(s)", n)
	}
	if got := b.attr(diag, "data-text"); !strings.Contains(got, "Sign-in paths today") || !strings.Contains(got, "retired since 2026-05-01") {
		t.Errorf("the diagnosis does not show today's sign-in paths:\n%s", got)
	}
	b.command("/c2 fix")
	b.waitFor("fix saying why nothing can help", botMessage("No temporary change can help in sandbox", "update the tool"))
	if n := b.eval(`String(document.querySelectorAll('[data-testid="button"]').length)`); n != "0" {
		t.Errorf("the page offers %s button(s) for a tenant no change can help", n)
	}
	b.screenshot("console-vendor-today.png")
	if n := patches(sb, ""); n != 0 {
		t.Errorf("the vendor's tenant was PATCHed %d times", n)
	}
	p.kill(t)

	sb, env = sandboxScenarioEnv(t, "mfa-nested-group")
	env["C2_DEFAULT_DURATION"] = "6s"
	before := sb.State()
	p = startBot(t, env, "serve")
	b.open(p.url, "alice", "Alice")
	b.command("/c2 diagnose")
	findings := b.waitFor("the diagnosis with the scoped exclusion", `(() => {
		for (const m of document.querySelectorAll('[data-testid="message"][data-kind="bot"]')) {
			const ca = [...m.querySelectorAll('[data-testid="section"][data-severity="blocker"]')]
				.some((s) => /Conditional Access/.test(s.textContent));
			const fix = m.querySelector('[data-testid="button"][data-label="Request temporary fix"]');
			if (ca && fix && (m.dataset.text || '').includes('exclude `+sandbox.DefaultToolAccount+`')) return m.dataset.id;
		}
		return '';
	})()`)
	b.click(findings, "Request temporary fix")
	card := b.waitFor("the approval card for the exclusion", botMessage("Approval needed", "exclude "+sandbox.DefaultToolAccount))
	if got := b.attr(card, "data-text"); strings.Contains(got, "Security defaults") || !strings.Contains(got, "takes up to 24 hours") ||
		!strings.Contains(got, "Shorter than the propagation time") {
		t.Errorf("the card is not the scoped exclusion with its propagation warning:\n%s", got)
	}
	b.switchUser("bob", "Bob")
	b.waitFor("the approval card after the switch", cardTitled(card, "Approval needed"))
	b.click(card, "Approve")
	b.waitFor("the card reporting the exclusion applied", cardTitled(card, "Applied"))
	if !toolExcluded(sb.State()) {
		t.Fatalf("the card says applied but no policy excludes the tool: %+v", sb.State().Policies)
	}
	b.waitFor("the card reporting the revert", cardTitled(card, "Reverted"))
	eventually(t, 10*time.Second, "the tool included in the policy again", func() bool { return !toolExcluded(sb.State()) })
	after := sb.State()
	for i, pol := range after.Policies {
		if !slices.Equal(pol.ExcludeUsers, before.Policies[i].ExcludeUsers) || pol.State != before.Policies[i].State {
			t.Errorf("policy %s after the revert: %+v, before: %+v", pol.ID, pol, before.Policies[i])
		}
	}
	if after.SecurityDefaults != before.SecurityDefaults || patches(sb, securityDefaults) != 0 || patches(sb, "/admin/sharepoint") != 0 {
		t.Errorf("a tenant-wide setting was written")
	}
	b.do("scroll to the card", chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="message"][data-id="`+card+`"]').scrollIntoView({ block: 'start' })`))
	b.screenshot("console-mfa-reverted.png")
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// botMessage is a predicate for the id of the newest bot message whose
// title starts with prefix and whose text contains text (case-insensitive).
func botMessage(prefix, text string) string {
	return `(() => {
		const ms = [...document.querySelectorAll('[data-testid="message"][data-kind="bot"]')].reverse();
		const m = ms.find((m) => ((m.querySelector('[data-testid="message-title"]') || {}).textContent || '').startsWith(` + strconv.Quote(prefix) + `) &&
			(m.dataset.text || '').toLowerCase().includes(` + strconv.Quote(strings.ToLower(text)) + `));
		return m ? m.dataset.id : '';
	})()`
}

// open loads the console at url as user and waits until it is live.
func (b *browser) open(url, user, name string) {
	b.t.Helper()
	b.do("open the console at "+url,
		chromedp.Navigate(url+"/?user="+user),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="command-input"]`)),
	)
	b.waitUser(user, name)
}

// command types text in the command box and presses Send.
func (b *browser) command(text string) {
	b.t.Helper()
	b.do("type "+text,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="command-input"]`), text),
		chromedp.Click(chromedp.CSS(`[data-testid="send"]`)),
	)
}

// cardTitled is a predicate for the message id whose title starts with prefix.
func cardTitled(id, prefix string) string {
	return `(() => {
		const m = document.querySelector('[data-testid="message"][data-id="` + id + `"]');
		const t = m && m.querySelector(':scope > .body > .card > [data-testid="message-title"]');
		return t && t.textContent.startsWith(` + strconv.Quote(prefix) + `) ? m.dataset.version : '';
	})()`
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// browser is one headless Chromium tab for a test.
type browser struct {
	t   *testing.T
	ctx context.Context
	out *syncBuffer

	mu         sync.Mutex
	pageErrors []string // uncaught exceptions and console errors of the page
}

// errors returns the page's uncaught exceptions and console errors so far.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.pageErrors...)
}

// stepTimeout bounds every step; the whole test stays well under a minute.
const stepTimeout = 20 * time.Second

func newBrowser(t *testing.T) *browser {
	t.Helper()
	out := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(out),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, out: out}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output (D-Bus noise left out):\n%s", chromiumLog(out.String()))
		}
	})
	// Start the browser on the long-lived context, with no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, out.String())
	}
	// Keep the page's uncaught errors and console errors.
	err := chromedp.Listen(ctx, func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			line = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil && ev.ExceptionDetails.Exception.Description != "" {
				line += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			line = "console.error: " + strings.Join(parts, " ")
		default:
			return
		}
		b.mu.Lock()
		b.pageErrors = append(b.pageErrors, line)
		b.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chromiumLog is the browser's output without the D-Bus complaints of a
// container, cut to its last lines.
func chromiumLog(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if line != "" && !strings.Contains(line, "dbus") {
			keep = append(keep, line)
		}
	}
	if len(keep) > 40 {
		keep = keep[len(keep)-40:]
	}
	return strings.Join(keep, "\n")
}

// step runs a with a per-step timeout.
func step[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.transcript())
	}
	return v
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	step(b, what, chromedp.Steps(steps...))
}

// eval returns the string value of a JavaScript expression.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	return step(b, "evaluate "+firstLine(expr), chromedp.Evaluate[string](expr))
}

func (b *browser) text(css string) string {
	b.t.Helper()
	return step(b, "read "+css, chromedp.TextContent(chromedp.CSS(css)))
}

func (b *browser) attr(id, name string) string {
	b.t.Helper()
	return b.eval(`document.querySelector('[data-testid="message"][data-id="` + id + `"]').getAttribute(` + strconv.Quote(name) + `) || ''`)
}

// waitFor polls a JavaScript expression until it gives a non-empty string,
// and returns that string.
func (b *browser) waitFor(what, expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[string](expr,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout-time.Second)))
	if err != nil {
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			err = fmt.Errorf("not seen within %s", stepTimeout-time.Second)
		}
		b.t.Fatalf("waiting for %s: %v\n%s", what, err, b.transcript())
	}
	return v
}

// click presses the button labelled label on message id with the mouse.
func (b *browser) click(id, label string) {
	b.t.Helper()
	sel := `[data-testid="message"][data-id="` + id + `"] > .body > .card > .actions > [data-testid="button"][data-label="` + label + `"]`
	b.do("click "+label+" on "+id, chromedp.Click(chromedp.CSS(sel)))
}

// switchUser picks user in the "Acting as" select, as a person would, and
// waits until the page is live again as that user.
func (b *browser) switchUser(id, name string) {
	b.t.Helper()
	b.do("switch to "+id, chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.querySelector('[data-testid="user-switch"]');
		s.value = `+strconv.Quote(id)+`;
		s.dispatchEvent(new Event('change', { bubbles: true }));
	})()`))
	b.waitUser(id, name)
}

func (b *browser) waitUser(id, name string) {
	b.t.Helper()
	b.waitFor("the console live as "+id, `(() => {
		const conn = document.querySelector('[data-testid="connection"]');
		const as = document.querySelector('[data-testid="acting-as"]');
		const sel = document.querySelector('[data-testid="user-switch"]');
		return conn.dataset.state === 'live' && sel.value === `+strconv.Quote(id)+` &&
			as.textContent.startsWith(`+strconv.Quote(name)+`) &&
			new URLSearchParams(location.search).get('user') === `+strconv.Quote(id)+` ? 'live' : '';
	})()`)
}

// screenshot saves the page under the test's temp dir and, when
// C2_SCREENSHOT_DIR is set, there too.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := step(b, "screenshot", chromedp.FullScreenshot(100))
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		b.t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	dirs := []string{b.t.TempDir()}
	if d := os.Getenv("C2_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.t.Fatal(err)
		}
		path := filepath.Join(d, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot: %s", path)
	}
}

// transcript describes what the page shows, for failure messages. It uses
// the long-lived context so that it works after a step timed out.
func (b *browser) transcript() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const lines = [];
		const conn = document.querySelector('[data-testid="connection"]');
		const err = document.querySelector('[data-testid="error"]');
		lines.push('connection: ' + (conn ? conn.dataset.state : '?') + ', url: ' + location.href);
		if (err && !err.hidden) lines.push('error bar: ' + err.textContent);
		for (const m of document.querySelectorAll('[data-testid="message"]')) {
			lines.push(m.dataset.id + ' v' + m.dataset.version + ' ' + m.dataset.kind +
				(m.dataset.thread ? ' in ' + m.dataset.thread : '') +
				(m.dataset.ephemeral ? ' (only ' + m.dataset.author + ')' : '') + ': ' +
				(m.dataset.text || '').split('\n')[0]);
		}
		return lines.join('\n');
	})()`))
	if err != nil {
		s = "page unavailable: " + err.Error()
	}
	return "the page shows:\n" + s + "\npage errors: " + strings.Join(b.errors(), "\n")
}
