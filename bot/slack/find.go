package slack

import (
	"context"
	"errors"
	"fmt"

	"github.com/c2bot/c2bot/bot"
	"github.com/slack-go/slack"
)

var _ bot.Finder = (*Adapter)(nil)

// Finding an earlier copy of a message. Slack's chat.postMessage takes no
// idempotency key, so the outbox marks each notice (Message.Key becomes the
// block_id of its first block, which Slack keeps and returns with the
// message) and, when a delivery was interrupted, asks Find whether the
// notice got through before posting it again.
//
// Reading a conversation needs its *:history scope: channels:history for
// public channels, groups:history for private ones, im:history for direct
// messages. A bot token with those scopes may call conversations.history
// and conversations.replies in the conversations the bot is a member of
// (docs.slack.dev/reference/scopes/channels.history lists both methods for
// bot tokens; the "bot user tokens … lack sufficient permissions" note on
// conversations.replies is about legacy bot tokens, which
// docs.slack.dev/reference/methods/conversations.history limits to direct
// messages). Without the scope Find returns bot.ErrCannotLook and the
// notice is posted again: at least once, as before.
const (
	// findPage is how many messages one history call asks for.
	findPage = 200
	// findPages bounds how far back Find looks: the interrupted post is
	// among the newest messages of its thread or channel.
	findPages = 5
	// keyPrefix starts every block_id c2bot sets, so that a key never
	// collides with the ids Slack assigns.
	keyPrefix = "c2bot-"
	// maxBlockID is Slack's limit on a block_id (docs.slack.dev/reference/block-kit/blocks).
	maxBlockID = 255
)

// lookErrors are the answers that mean the token may not read the
// conversation, for good: asking again will not help.
var lookErrors = map[string]bool{
	"missing_scope":          true,
	"not_allowed_token_type": true,
	"no_permission":          true,
	"access_denied":          true,
}

// keyBlockID is the block_id that carries key.
func keyBlockID(key string) string {
	id := keyPrefix + key
	if len(id) > maxBlockID {
		id = id[:maxBlockID]
	}
	return id
}

// setBlockID sets b's block_id, for the block types render draws.
func setBlockID(b slack.Block, id string) {
	switch t := b.(type) {
	case *slack.HeaderBlock:
		t.BlockID = id
	case *slack.SectionBlock:
		t.BlockID = id
	case *slack.DividerBlock:
		t.BlockID = id
	case *slack.ContextBlock:
		t.BlockID = id
	case *slack.ActionBlock:
		t.BlockID = id
	}
}

// Find looks for the message the bot posted in conv marked with key: in
// the thread (conversations.replies) when conv.Thread is set, else among
// the channel's newest top-level messages (conversations.history). Only the
// bot's own messages count, so nobody else can suppress a notice by
// imitating its mark.
func (a *Adapter) Find(ctx context.Context, conv bot.Conversation, key string) (bot.MessageRef, bool, error) {
	if key == "" {
		return bot.MessageRef{}, false, errors.New("slack find: empty key")
	}
	self := a.botUserID()
	if self == "" {
		return bot.MessageRef{}, false, fmt.Errorf("slack find: the bot's own user id is not known yet (auth.test has not run): %w", bot.ErrCannotLook)
	}
	want := keyBlockID(key)
	cursor := ""
	for range findPages {
		var msgs []slack.Message
		var next string
		method := "conversations.history"
		if conv.Thread != "" {
			method = "conversations.replies"
		}
		err := a.call(ctx, method, func(ctx context.Context) error {
			var err error
			if conv.Thread != "" {
				msgs, _, next, err = a.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
					ChannelID: conv.ID, Timestamp: conv.Thread, Limit: findPage, Cursor: cursor})
				return err
			}
			var res *slack.GetConversationHistoryResponse
			res, err = a.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: conv.ID, Limit: findPage, Cursor: cursor})
			if err == nil {
				msgs, next = res.Messages, res.ResponseMetaData.NextCursor
			}
			return err
		})
		if err != nil {
			if code := slackErrorCode(err); lookErrors[code] {
				return bot.MessageRef{}, false, fmt.Errorf("slack %s in %s: %s (grant the app the conversation's *:history scope): %w",
					method, conv.ID, code, bot.ErrCannotLook)
			}
			return bot.MessageRef{}, false, fmt.Errorf("slack find in %s: %w", conv.ID, err)
		}
		for _, m := range msgs {
			if m.User != self || !hasBlockID(m.Blocks, want) {
				continue
			}
			return bot.MessageRef{Conv: conv, ID: m.Timestamp}, true, nil
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return bot.MessageRef{}, false, nil
}

// hasBlockID reports whether one of blocks has block_id id.
func hasBlockID(blocks slack.Blocks, id string) bool {
	for _, b := range blocks.BlockSet {
		if b != nil && b.ID() == id {
			return true
		}
	}
	return false
}
