package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
)

// Kinds of delivery in the outbox.
const (
	deliverPost   = "post"   // post Msg to Conv
	deliverCard   = "card"   // post the approval card and remember its reference
	deliverUpdate = "update" // update the request's card in place
	deliverThread = "thread" // post in the thread under the request's card
)

// delivery is the outbox payload.
type delivery struct {
	Kind      string           `json:"kind"`
	RequestID string           `json:"request_id,omitempty"`
	Conv      bot.Conversation `json:"conv"`
	Msg       bot.Message      `json:"msg"`
}

func outboxItem(d delivery) store.OutboxItem {
	return store.OutboxItem{Platform: d.Conv.Platform, RequestID: d.RequestID, Payload: mustJSON(d)}
}

// cardUpdate is the outbox item that redraws r's card for its current state.
func (c *Core) cardUpdate(r store.Request, note string) store.OutboxItem {
	return outboxItem(delivery{Kind: deliverUpdate, RequestID: r.ID, Conv: decodeConv(r), Msg: renderCard(r, c.cardInfoNote(r, note))})
}

// threadPost is the outbox item that posts msg in the thread of r's card.
func (c *Core) threadPost(r store.Request, msg bot.Message) store.OutboxItem {
	return outboxItem(delivery{Kind: deliverThread, RequestID: r.ID, Conv: decodeConv(r), Msg: msg})
}

// enqueue adds one delivery outside a transition.
func (c *Core) enqueue(ctx context.Context, d delivery) error {
	if err := c.cfg.Store.Enqueue(ctx, outboxItem(d)); err != nil {
		return fmt.Errorf("queue notification: %w", err)
	}
	c.wakeDelivery()
	return nil
}

// updateCard queues a redraw of r's card (with an optional note).
func (c *Core) updateCard(ctx context.Context, r store.Request, note string) {
	if err := c.cfg.Store.Enqueue(ctx, c.cardUpdate(r, note)); err != nil {
		c.log.ErrorContext(ctx, "card update not queued", "request", r.ID, "err", err)
		return
	}
	c.wakeDelivery()
}

// outboxLease is how long a claimed outbox item is left to the process that
// claimed it before another may deliver it: longer than any delivery takes.
const outboxLease = 30 * time.Second

// outboxBatch is how many items one claim takes: few enough to deliver
// well within the lease.
const outboxBatch = 20

// errNoCard means an update waits for its card to be posted first.
var errNoCard = errors.New("the approval card is not posted yet")

// Flush delivers every outbox item that is ready, oldest first. A failed
// delivery is retried with backoff; one the platform refuses for good is
// dropped and recorded in the audit log. Run calls it; tests call it.
func (c *Core) Flush(ctx context.Context) error {
	c.flushing.Lock()
	defer c.flushing.Unlock()
	if c.shared == nil {
		// One process owns the store: nothing to claim, and whatever a
		// previous process was delivering when it stopped is ready again.
		_, err := c.flushOnce(ctx, false)
		return err
	}
	// A request's next notice can be claimed once the one before it is
	// delivered: claim again until nothing more is ready (bounded).
	for range flushPasses {
		n, err := c.flushOnce(ctx, true)
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

// flushPasses bounds the claim-and-deliver passes of one Flush.
const flushPasses = 20

// flushOnce delivers ready items (claimed first when the store is shared)
// and returns how many it took.
func (c *Core) flushOnce(ctx context.Context, claim bool) (int, error) {
	var items []store.OutboxItem
	var err error
	if claim {
		// Claimed items are this process's until outboxLease ends, so two
		// replicas never deliver the same notice; a replica that dies lets
		// go of its items when their lease runs out. A claim holds at most
		// the oldest item of each request, so its notices keep their order.
		items, err = c.cfg.Store.OutboxClaim(ctx, c.now(), outboxBatch, outboxLease)
	} else {
		items, err = c.cfg.Store.OutboxReady(ctx, c.now(), 100)
	}
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	blocked := map[string]bool{} // requests with an earlier item still waiting: keep their order
	for i, it := range items {
		if ctx.Err() != nil {
			if claim {
				c.release(ctx, items[i:])
			}
			return 0, ctx.Err()
		}
		if it.RequestID != "" && blocked[it.RequestID] {
			continue
		}
		err := c.deliver(ctx, it)
		switch {
		case err == nil:
			c.metrics.Delivery(it.Platform, DeliveryDelivered)
			if err := c.outboxDone(ctx, it.ID); err != nil {
				return 0, fmt.Errorf("outbox: %w", err)
			}
		case errors.Is(err, bot.ErrUndeliverable):
			c.metrics.Delivery(it.Platform, DeliveryDropped)
			c.log.ErrorContext(ctx, "notification dropped", "outbox_id", it.ID, "request", it.RequestID, "err", err)
			c.audit1(ctx, store.Event{Actor: "c2bot", Action: "notification_dropped", RequestID: it.RequestID,
				Detail: "the conversation cannot be reached any more (the error is in c2bot's log)"})
			if err := c.outboxDone(ctx, it.ID); err != nil {
				return 0, fmt.Errorf("outbox: %w", err)
			}
		case ctx.Err() != nil && claim:
			// Stopping (a rolling update): hand the rest back now rather
			// than leave it to the lease.
			c.release(ctx, items[i:])
			return 0, ctx.Err()
		default:
			if it.RequestID != "" {
				blocked[it.RequestID] = true
			}
			c.metrics.Delivery(it.Platform, DeliveryRetried)
			next := c.now().Add(c.backoff(it.Attempts + 1))
			c.log.WarnContext(ctx, "notification not delivered; will retry", "outbox_id", it.ID, "request", it.RequestID,
				"attempt", it.Attempts+1, "next", next, "err", err)
			if err := c.cfg.Store.OutboxRetry(ctx, it.ID, next, err.Error()); err != nil {
				return 0, fmt.Errorf("outbox: %w", err)
			}
		}
	}
	return len(items), nil
}

// release hands claimed items back so that another replica delivers them
// at once, when this one stops before it could.
func (c *Core) release(ctx context.Context, items []store.OutboxItem) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for _, it := range items {
		if err := c.cfg.Store.OutboxRetry(rctx, it.ID, c.now(), "not delivered: c2bot stopped"); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.log.WarnContext(rctx, "claimed notification not handed back; another replica sends it when its lease ends",
				"outbox_id", it.ID, "err", err)
		}
	}
}

// outboxDone records a delivery. The notice is out already: while the
// database is away, keep trying (for up to half the lease) rather than let
// the lease run out and the notice go out again.
func (c *Core) outboxDone(ctx context.Context, id uint64) error {
	deadline := time.Now().Add(outboxLease / 2)
	for {
		err := c.cfg.Store.OutboxDone(ctx, id)
		if err == nil || !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(storeRetry):
		}
	}
}

// deliver sends one outbox item.
func (c *Core) deliver(ctx context.Context, it store.OutboxItem) error {
	var d delivery
	if err := json.Unmarshal(it.Payload, &d); err != nil {
		return fmt.Errorf("outbox item %d: %v: %w", it.ID, err, bot.ErrUndeliverable)
	}
	s, err := c.sender(d.Conv.Platform)
	if err != nil {
		return err
	}
	d.Msg.Key = noticeKey(it)
	// post sends a new message at most once per outbox item where the
	// platform lets c2bot look: see postOnce.
	post := func(conv bot.Conversation) (bot.MessageRef, error) {
		return c.postOnce(ctx, s, it, conv, d.Msg)
	}
	card := func() (bot.MessageRef, error) {
		r, err := c.cfg.Store.Get(ctx, d.RequestID)
		if err != nil {
			return bot.MessageRef{}, fmt.Errorf("request %s: %v: %w", d.RequestID, err, bot.ErrUndeliverable)
		}
		var ref bot.MessageRef
		if len(r.Card) == 0 || json.Unmarshal(r.Card, &ref) != nil || ref.ID == "" {
			return bot.MessageRef{}, errNoCard
		}
		return ref, nil
	}
	switch d.Kind {
	case deliverPost:
		_, err := post(d.Conv)
		return err
	case deliverCard:
		if _, err := card(); err == nil {
			return nil // posted already (a retry after a crash)
		}
		ref, err := post(d.Conv)
		if err != nil {
			return err
		}
		return c.saveCard(ctx, d.RequestID, ref)
	case deliverUpdate:
		ref, err := card()
		if errors.Is(err, errNoCard) {
			queued, qerr := c.cardQueued(ctx, d.RequestID, it.ID)
			if qerr != nil || queued {
				return errors.Join(err, qerr) // wait for the card
			}
			// No card was recorded and none will be (its delivery was
			// dropped): this state becomes the card.
			c.log.WarnContext(ctx, "request has no card; posting its state as the card", "request", d.RequestID)
			ref, err = post(d.Conv)
			if err != nil {
				return err
			}
			return c.saveCard(ctx, d.RequestID, ref)
		}
		if err != nil {
			return err
		}
		err = s.Update(ctx, ref, d.Msg)
		if !errors.Is(err, bot.ErrUndeliverable) {
			return err
		}
		// The card is gone (deleted, or from a console session before a
		// restart): post the new state instead, and make that the card.
		c.log.WarnContext(ctx, "card cannot be updated; posting it again", "request", d.RequestID, "err", err)
		ref, err = post(d.Conv)
		if err != nil {
			return err
		}
		return c.saveCard(ctx, d.RequestID, ref)
	case deliverThread:
		if ref, err := card(); err == nil {
			_, err := post(ref.Conv.InThread(ref))
			if !errors.Is(err, bot.ErrUndeliverable) {
				return err
			}
			c.log.WarnContext(ctx, "thread reply refused; posting in the channel", "request", d.RequestID, "err", err)
		} else if !errors.Is(err, errNoCard) {
			return err
		}
		_, err := post(d.Conv)
		return err
	}
	return fmt.Errorf("outbox item %d: unknown kind %q: %w", it.ID, d.Kind, bot.ErrUndeliverable)
}

// noticeKey marks the message an outbox item posts: the item's id, which
// no other item of this store has, and a digest of what it says, so that
// another c2bot deployment's item with the same id in the same channel is
// not taken for it.
func noticeKey(it store.OutboxItem) string {
	sum := sha256.Sum256(it.Payload)
	return fmt.Sprintf("n%d-%x", it.ID, sum[:6])
}

// postOnce posts msg to conv for outbox item it, at most once where the
// platform lets c2bot look. Chat platforms take no idempotency key, so a
// crash after the platform accepted a post and before the outbox recorded
// it (or an answer lost on the way back) would otherwise post the notice
// again. The first attempt is therefore recorded before the post (Tried);
// a later attempt first asks the sender (a bot.Finder) whether the marked
// message is there, and posts only when it is not. A sender that cannot
// look (not a Finder, or bot.ErrCannotLook: Teams, a Slack app without a
// *:history scope) posts again: at least once, and the log says so.
func (c *Core) postOnce(ctx context.Context, s bot.Sender, it store.OutboxItem, conv bot.Conversation, msg bot.Message) (bot.MessageRef, error) {
	if it.Tried.IsZero() {
		if err := c.cfg.Store.OutboxTry(ctx, it.ID, c.now()); err != nil {
			// Posting without the record could post twice after a crash.
			return bot.MessageRef{}, fmt.Errorf("record delivery attempt: %w", err)
		}
		return s.Post(ctx, conv, msg)
	}
	ref, found, err := bot.MessageRef{}, false, fmt.Errorf("%s cannot be asked: %w", s.Platform(), bot.ErrCannotLook)
	if f, ok := s.(bot.Finder); ok {
		ref, found, err = f.Find(ctx, conv, msg.Key)
	}
	switch {
	case err == nil && found:
		c.log.InfoContext(ctx, "notification had been delivered before c2bot could record it; not posting it again",
			"outbox_id", it.ID, "request", it.RequestID, "message", ref.ID)
		return ref, nil
	case err == nil:
	case errors.Is(err, bot.ErrCannotLook):
		c.log.WarnContext(ctx, "notification may have been delivered before; posting it again", "outbox_id", it.ID,
			"request", it.RequestID, "platform", s.Platform(), "first_tried", it.Tried, "err", err)
	default:
		return bot.MessageRef{}, fmt.Errorf("look for an earlier delivery: %w", err)
	}
	return s.Post(ctx, conv, msg)
}

// cardQueued reports whether the card of request id is still waiting in the
// outbox ahead of item before.
func (c *Core) cardQueued(ctx context.Context, id string, before uint64) (bool, error) {
	// Every item, whenever it is next tried (a century on stays inside
	// the nanosecond times the stores keep).
	items, err := c.cfg.Store.OutboxReady(ctx, c.now().AddDate(100, 0, 0), 0)
	if err != nil {
		return false, fmt.Errorf("outbox: %w", err)
	}
	for _, it := range items {
		if it.RequestID != id || it.ID >= before {
			continue
		}
		var d delivery
		if json.Unmarshal(it.Payload, &d) == nil && d.Kind == deliverCard {
			return true, nil
		}
	}
	return false, nil
}
