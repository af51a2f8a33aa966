package teams

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/c2bot/c2bot/bot"
)

// Invoke response types (the body Teams expects for adaptiveCard/action).
const (
	invokeTypeCard    = cardContentType
	invokeTypeMessage = "application/vnd.microsoft.activity.message"
)

// Texts of the adapter's own answers.
const (
	textBusy      = "c2 is busy right now; please try again in a minute."
	textWorking   = "Working on it; the result will appear in this conversation."
	textNotOurs   = "This button is not a c2 action."
	textReceived  = "Done; see the conversation."
	textNoHandler = "c2 is starting up; please try again in a moment."
	textNoAAD     = "c2 cannot tell who you are: Teams did not send your Entra object id (aadObjectId) with this message, so nothing was run. c2 acts only for signed-in members of its organisation's Teams."
)

// teamsChannelID is the only Bot Framework channel served: Microsoft Teams.
// A token for another channel (Web Chat, Direct Line, …) is not a Teams
// user, and its from.aadObjectId is whatever the client says.
const teamsChannelID = "msteams"

// invokeResponse is the HTTP body answering an adaptiveCard/action invoke.
type invokeResponse struct {
	StatusCode int    `json:"statusCode"`
	Type       string `json:"type"`
	Value      any    `json:"value"`
}

// pendingInvoke is an Action.Execute click waiting for the handler's first
// update of the clicked card (or any post into its conversation).
type pendingInvoke struct {
	conv  string // conversation id without thread
	msgID string // the clicked card's activity id
	done  chan invokeResponse
}

// Handler returns the http.Handler for /api/messages. It answers 401 to a
// request whose token is refused (nothing is dispatched), 403 to an
// activity from another channel than msteams, from a tenant that is not
// allowed, or signed by a key not endorsed for msteams (and, unauthenticated,
// to a browser request or a non-loopback serviceUrl), 415 to a body that is
// not JSON, 400 to a malformed activity, 503 when the signing keys cannot be
// fetched or no dispatcher is attached, and 200 once a command is queued. An
// adaptiveCard/action invoke is answered with the updated card when the
// handler updates it within a few seconds.
func (a *Adapter) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

func (a *Adapter) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if a.auth == nil {
		if status, why := localOnly(r); status != 0 {
			a.log.WarnContext(ctx, "teams request refused", "reason", why, "remote", r.RemoteAddr)
			a.refused("cross_site")
			http.Error(w, why, status)
			return
		}
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		http.Error(w, "send the activity as application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		a.refused("too_large")
		http.Error(w, "request too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	act, err := parseActivity(body)
	if err != nil {
		a.log.InfoContext(ctx, "bad activity", "err", err)
		a.refused("bad_request")
		http.Error(w, "bad activity", http.StatusBadRequest)
		return
	}
	if !a.authorize(w, r, act) {
		return
	}
	if why := a.admit(act); why != "" {
		a.log.WarnContext(ctx, "teams activity refused", "reason", why, "channel_id", act.ChannelID, "tenant", act.tenantID())
		a.refused("wrong_tenant")
		http.Error(w, why, http.StatusForbidden)
		return
	}
	switch act.Type {
	case schema.Message:
		a.serveMessage(w, r, act)
	case schema.Invoke:
		if act.Name == invokeAdaptiveCardAction {
			a.serveExecute(w, r, act)
			return
		}
		if act.Name == "" { // a legacy card action: value is the button's data
			a.serveMessage(w, r, act)
			return
		}
		w.WriteHeader(http.StatusNotImplemented)
	case schema.ConversationUpdate:
		if act.botAdded() && act.From.AadObjectID != "" {
			// Say hello with the help text, through the normal road.
			cmd := bot.Command{ID: act.ID, User: act.user(), Conv: act.conversation(), Text: "help"}
			if s := a.submitter(); s != nil && !s.Submit(cmd) {
				a.log.WarnContext(ctx, "welcome dropped: dispatcher busy")
			}
		}
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActivityBytes)
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

// isJSON reports whether a Content-Type is application/json (any
// parameters). A browser can send text/plain or a form across sites without
// a preflight, never application/json.
func isJSON(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	return err == nil && mt == "application/json"
}

// localOnly checks a request in unauthenticated mode. Only local programs
// (the Agents Playground, a server-side Node process) may post: the client
// must be on loopback, the Host a loopback name (a DNS-rebound name is
// not), and the request must not come from a browser — the playground sends
// neither Origin nor Sec-Fetch-Site, while any web page open in the
// operator's browser does. It returns the status and reason of a refusal,
// or 0.
func localOnly(r *http.Request) (int, string) {
	switch {
	case !isLoopbackAddr(r.RemoteAddr):
		return http.StatusUnauthorized, "unauthenticated mode accepts loopback clients only"
	case !bot.IsLoopbackHost(r.Host):
		return http.StatusForbidden, "unauthenticated mode accepts loopback host names only"
	case r.Header.Get("Origin") != "":
		return http.StatusForbidden, "browser requests (Origin) are refused in unauthenticated mode"
	case r.Header.Get("Sec-Fetch-Site") != "" && r.Header.Get("Sec-Fetch-Site") != "none":
		return http.StatusForbidden, "browser requests (Sec-Fetch-Site) are refused in unauthenticated mode"
	}
	return 0, ""
}

// isLoopbackURL reports whether a serviceUrl points at this machine.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && bot.IsLoopbackHost(u.Host)
}

// admit checks what the activity says about itself once its token (or, in
// unauthenticated mode, its origin) has been accepted: the channel must be
// msteams, every tenant id it carries must be an allowed one, and, in
// unauthenticated mode, replies must go to this machine. It returns the
// reason of a refusal, or "".
func (a *Adapter) admit(act *inActivity) string {
	if act.ChannelID != teamsChannelID {
		return "only Microsoft Teams activities (channelId msteams) are served"
	}
	ids := act.tenantIDs()
	if len(ids) == 0 {
		return "the activity names no tenant"
	}
	for _, id := range ids {
		if !a.tenants[strings.ToLower(id)] {
			return "tenant " + id + " may not use this bot (C2_TEAMS_TENANTS)"
		}
	}
	if a.auth == nil && !isLoopbackURL(act.ServiceURL) {
		return "unauthenticated mode replies only to a loopback serviceUrl"
	}
	return ""
}

// authorize checks the request's token (unauthenticated mode has checked
// the request's origin already) and answers the refusal itself.
func (a *Adapter) authorize(w http.ResponseWriter, r *http.Request, act *inActivity) bool {
	ctx := r.Context()
	if a.auth == nil {
		return true
	}
	err := a.auth.Verify(ctx, r.Header.Get("Authorization"), act.ServiceURL, act.ChannelID)
	switch {
	case err == nil:
		return true
	case errors.Is(err, errKeysUnavailable):
		a.log.ErrorContext(ctx, "teams request not checked", "err", err)
		http.Error(w, "cannot verify request now", http.StatusServiceUnavailable)
	case errors.Is(err, errForbidden):
		a.log.WarnContext(ctx, "teams request refused", "err", err)
		a.refused("forbidden")
		http.Error(w, "forbidden", http.StatusForbidden)
	default:
		a.log.WarnContext(ctx, "teams request refused", "err", err)
		a.refused("unauthorised")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}
	return false
}

// serveMessage queues the command in a message (typed, or an Action.Submit
// click) and answers 200 at once; replies follow through the connector.
func (a *Adapter) serveMessage(w http.ResponseWriter, r *http.Request, act *inActivity) {
	cmd, ok := act.command()
	if !ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	if cmd.User.ID == "" {
		a.log.WarnContext(r.Context(), "teams message without aadObjectId refused", "from_id", act.From.ID)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), replyTimeout)
		defer cancel()
		if _, err := a.Post(ctx, cmd.Conv, bot.Message{Text: textNoAAD}); err != nil {
			a.log.WarnContext(ctx, "refusal not delivered", "err", err)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	s := a.submitter()
	if s == nil {
		http.Error(w, textNoHandler, http.StatusServiceUnavailable)
		return
	}
	if !s.Submit(cmd) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), replyTimeout)
		defer cancel()
		if _, err := a.Post(ctx, cmd.Conv, bot.Message{Text: textBusy}); err != nil {
			a.log.WarnContext(ctx, "busy reply not delivered", "err", err)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// serveExecute handles an Action.Execute click: it queues the command and
// waits, up to invokeWait, for the handler to update the clicked card, whose
// new content becomes the invoke response. Otherwise it answers with a short
// message and later updates go through the connector.
func (a *Adapter) serveExecute(w http.ResponseWriter, r *http.Request, act *inActivity) {
	ctx := r.Context()
	cmd, ok := act.command()
	if !ok {
		writeInvoke(w, invokeResponse{StatusCode: 200, Type: invokeTypeMessage, Value: textNotOurs})
		return
	}
	if cmd.User.ID == "" {
		a.log.WarnContext(ctx, "teams click without aadObjectId refused", "from_id", act.From.ID)
		writeInvoke(w, invokeResponse{StatusCode: 200, Type: invokeTypeMessage, Value: textNoAAD})
		return
	}
	s := a.submitter()
	if s == nil {
		writeInvoke(w, invokeResponse{StatusCode: 200, Type: invokeTypeMessage, Value: textNoHandler})
		return
	}
	var p *pendingInvoke
	if cmd.Origin != nil {
		p = a.expectInvoke(cmd.Origin.Conv.ID, cmd.Origin.ID)
	}
	if !s.Submit(cmd) {
		if p != nil {
			a.dropInvoke(p)
		}
		writeInvoke(w, invokeResponse{StatusCode: 200, Type: invokeTypeMessage, Value: textBusy})
		return
	}
	if p == nil {
		writeInvoke(w, invokeResponse{StatusCode: 200, Type: invokeTypeMessage, Value: textWorking})
		return
	}
	timer := time.NewTimer(a.invokeWait)
	defer timer.Stop()
	select {
	case res := <-p.done:
		writeInvoke(w, res)
		return
	case <-timer.C:
	case <-ctx.Done():
	}
	if a.dropInvoke(p) {
		writeInvoke(w, invokeResponse{StatusCode: 200, Type: invokeTypeMessage, Value: textWorking})
		return
	}
	// Answered between the timeout and the drop: the answer is waiting.
	writeInvoke(w, <-p.done)
}

func writeInvoke(w http.ResponseWriter, res invokeResponse) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(res)
}

// expectInvoke registers a click on message msgID of conversation conv
// that waits for its answer.
func (a *Adapter) expectInvoke(conv, msgID string) *pendingInvoke {
	base, _ := splitConversationID(conv)
	p := &pendingInvoke{conv: base, msgID: msgID, done: make(chan invokeResponse, 1)}
	a.mu.Lock()
	a.inflight = append(a.inflight, p)
	a.mu.Unlock()
	return p
}

// dropInvoke unregisters p; it reports false when p was answered already.
func (a *Adapter) dropInvoke(p *pendingInvoke) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, q := range a.inflight {
		if q == p {
			a.inflight = append(a.inflight[:i], a.inflight[i+1:]...)
			return true
		}
	}
	return false
}

// answerInvoke answers the waiting click on the card at ref, if any, with
// msg as the new card. It reports whether there was one.
func (a *Adapter) answerInvoke(ref bot.MessageRef, msg bot.Message) bool {
	base, _ := splitConversationID(ref.Conv.ID)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, p := range a.inflight {
		if p.conv == base && p.msgID == ref.ID {
			a.inflight = append(a.inflight[:i], a.inflight[i+1:]...)
			p.done <- invokeResponse{StatusCode: 200, Type: invokeTypeCard, Value: renderCard(msg)}
			return true
		}
	}
	return false
}

// settleInvokes answers the clicks waiting in conv after the bot posted
// there instead of updating the card (a new approval card, an explanation
// for an unauthorised click): the click gets a short message and the card
// stays as it is.
func (a *Adapter) settleInvokes(conv bot.Conversation, msg bot.Message) {
	base, _ := splitConversationID(conv.ID)
	text := summary(msg)
	if text == "" {
		text = textReceived
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	kept := a.inflight[:0]
	for _, p := range a.inflight {
		if p.conv == base {
			p.done <- invokeResponse{StatusCode: 200, Type: invokeTypeMessage, Value: text}
			continue
		}
		kept = append(kept, p)
	}
	clear(a.inflight[len(kept):])
	a.inflight = kept
}

// refused counts an inbound request the adapter refused.
func (a *Adapter) refused(reason string) {
	if a.cfg.OnRefused != nil {
		a.cfg.OnRefused(reason)
	}
}
