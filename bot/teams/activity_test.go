package teams

import (
	"encoding/json"
	"testing"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/c2bot/c2bot/bot"
)

func TestFixturesParseIntoCommands(t *testing.T) {
	playConv := bot.Conversation{Platform: bot.Teams, ID: "3483bc16-6859-4ecc-a925-00dc2fe7126e"}
	alex := bot.User{ID: "00000000-0000-0000-0000-0000000000020", Name: "Alex Wilber"}
	c2cmd := map[string]any{"c2cmd": "approve r-1"}
	execute := map[string]any{"action": map[string]any{
		"type": "Action.Execute", "verb": "c2", "title": "Approve",
		"data": map[string]any{"c2cmd": "approve r-1", "comment": "typed before execute"},
	}}
	tests := []struct {
		name    string
		file    string
		fields  map[string]any
		wantOK  bool
		want    bot.Command
		wantRef schema.ConversationReference
	}{
		{
			name: "playground personal message", file: "playground_personal_message.json",
			fields: map[string]any{"text": "c2 diagnose contoso"},
			wantOK: true,
			want:   bot.Command{ID: "2210da4a-9b2d-45ba-bfed-e474bf4977bc", User: alex, Conv: playConv, Text: "diagnose contoso"},
			wantRef: schema.ConversationReference{
				Bot:          schema.ChannelAccount{ID: "00000000-0000-0000-0000-00000000000011", Name: "Test Bot"},
				Conversation: schema.ConversationAccount{ID: playConv.ID, TenantID: "00000000-0000-0000-0000-0000000000001", ConversationType: "personal"},
				ChannelID:    "msteams", ServiceURL: "http://localhost:56150/_connector",
			},
		},
		{
			name: "playground personal message as captured", file: "playground_personal_message.json",
			wantOK: true,
			want:   bot.Command{ID: "2210da4a-9b2d-45ba-bfed-e474bf4977bc", User: alex, Conv: playConv, Text: "hello from headless ui"},
		},
		{
			name: "playground channel message with mention", file: "playground_channel_message_with_mention.json",
			wantOK: true,
			want: bot.Command{ID: "40a31b54-ded4-4204-98c8-c26abc1d4397", User: alex, Text: "status",
				Conv: bot.Conversation{Platform: bot.Teams, ID: "team-id", Thread: "1795592543787"}},
			wantRef: schema.ConversationReference{
				Bot:          schema.ChannelAccount{ID: "00000000-0000-0000-0000-00000000000011", Name: "Test Bot"},
				Conversation: schema.ConversationAccount{ID: "team-id", TenantID: "00000000-0000-0000-0000-0000000000001", ConversationType: "channel", IsGroup: true},
				ChannelID:    "msteams", ServiceURL: "http://localhost:56150/_connector",
			},
		},
		{
			name: "playground action submit with c2cmd", file: "playground_action_submit_message.json",
			fields: map[string]any{"value": c2cmd},
			wantOK: true,
			want: bot.Command{ID: "ac3bc8d8-7cea-479a-b388-a8d39d5ac5a1", User: alex, Conv: playConv, Text: "approve r-1",
				Origin: &bot.MessageRef{Conv: playConv, ID: "1795592486071"}},
		},
		{
			name: "playground action submit of a foreign card", file: "playground_action_submit_message.json",
			wantOK: false,
		},
		{
			name: "playground action execute with c2cmd", file: "playground_action_execute_invoke.json",
			fields: map[string]any{"value": execute},
			wantOK: true,
			want: bot.Command{ID: "b8dd9d01-6d10-4605-9795-d7c8aa992656", User: alex, Conv: playConv, Text: "approve r-1",
				Origin: &bot.MessageRef{Conv: playConv, ID: "1795592486071"}},
		},
		{
			name: "playground action execute of a foreign card", file: "playground_action_execute_invoke.json",
			wantOK: false,
		},
		{
			name: "playground action execute with input of a foreign card", file: "playground_action_execute_invoke_with_input.json",
			wantOK: false,
		},
		{
			name: "playground action execute with input and c2cmd", file: "playground_action_execute_invoke_with_input.json",
			fields: map[string]any{"value": execute},
			wantOK: true,
			want: bot.Command{ID: "8820fa04-69a2-48eb-8eff-8a0be68415d3", User: alex, Conv: playConv, Text: "approve r-1",
				Origin: &bot.MessageRef{Conv: playConv, ID: "1795592538159"}},
		},
		{
			name: "teams channel message with mention", file: "teamsnet_channel_message_with_mention.json",
			fields: map[string]any{"text": "<at>ridotest</at> diagnose --for 4h"},
			wantOK: true,
			want: bot.Command{ID: "1759944781430", Text: "diagnose --for 4h",
				User: bot.User{ID: "b15a9416-0ad3-4172-9210-7beb711d3f70", Name: "rido"},
				Conv: bot.Conversation{Platform: bot.Teams, ID: "19:6848757105754c8981c67612732d9aa7@thread.tacv2", Thread: "1759881511856"}},
			wantRef: schema.ConversationReference{
				Bot:          schema.ChannelAccount{ID: "28:0b6fe6d1-fece-44f7-9a48-56465e2d5ab8", Name: "ridotest"},
				Conversation: schema.ConversationAccount{ID: "19:6848757105754c8981c67612732d9aa7@thread.tacv2", TenantID: "50612dbb-0237-4969-b378-8d42590f9c00", ConversationType: "channel", IsGroup: true},
				ChannelID:    "msteams", ServiceURL: "https://smba.trafficmanager.net/amer/50612dbb-0237-4969-b378-8d42590f9c00/",
			},
		},
		{
			name: "teams channel message as captured", file: "teamsnet_channel_message_with_mention.json",
			wantOK: true,
			want: bot.Command{ID: "1759944781430", Text: "reply to thread",
				User: bot.User{ID: "b15a9416-0ad3-4172-9210-7beb711d3f70", Name: "rido"},
				Conv: bot.Conversation{Platform: bot.Teams, ID: "19:6848757105754c8981c67612732d9aa7@thread.tacv2", Thread: "1759881511856"}},
		},
		{
			name: "teams invoke with c2cmd", file: "teamsnet_invoke_adaptivecard_action.json",
			fields: map[string]any{"value": map[string]any{"trigger": "manual", "action": map[string]any{
				"type": "Action.Execute", "verb": "c2", "data": map[string]any{"c2cmd": "deny r-7"}}}},
			wantOK: true,
			want: func() bot.Command {
				conv := bot.Conversation{Platform: bot.Teams, ID: "a:17vxw6pGQOb3Zfh8acXT8m_PqHycYpaFgzu2mFMUfkT-h0UskMctq5ZPPc7FIQxn2bx7rBSm5yE_HeUXsCcKZBrv77RgorB3_1_pAdvMhi39ClxQgawzyQ9GBFkdiwOxT"}
				return bot.Command{ID: "f:17b96347-e8b4-f340-10bc-eb52fc1a6ad4", Text: "deny r-7",
					User: bot.User{ID: "c5e99701-2a32-49c1-a660-4629ceeb8c61", Name: "Rido"}, Conv: conv,
					Origin: &bot.MessageRef{Conv: conv, ID: "1767765488332"}}
			}(),
		},
		{
			name: "teams invoke of a foreign card", file: "teamsnet_invoke_adaptivecard_action.json",
			wantOK: false,
		},
		{
			name: "docs messageBack without c2cmd runs its text", file: "msteams_docs_messageback_inbound.json",
			fields: map[string]any{"text": "status"},
			wantOK: true,
			want: bot.Command{ID: "f:5261769396935243054", Text: "status",
				// No aadObjectId: no id (from.id is never used).
				User: bot.User{Name: "John Smith"},
				Conv: bot.Conversation{Platform: bot.Teams, ID: "19:malejcou081i20ojmlcau0@thread.skype", Thread: "1498171086622"}},
			wantRef: schema.ConversationReference{
				Bot:          schema.ChannelAccount{ID: "28:76096e45-119f-4736-859c-6dfff54395f7", Name: "MyBot"},
				Conversation: schema.ConversationAccount{ID: "19:malejcou081i20ojmlcau0@thread.skype", TenantID: "bec8e231-67ad-484e-87f4-3e5438390a77"},
				ChannelID:    "msteams", ServiceURL: "https://smba.trafficmanager.net/amer-client-ss.msg/",
			},
		},
		{
			name: "docs messageBack with c2cmd", file: "msteams_docs_messageback_inbound.json",
			fields: map[string]any{"value": map[string]any{"c2cmd": "fix contoso --for 2h"}},
			wantOK: true,
			want: func() bot.Command {
				conv := bot.Conversation{Platform: bot.Teams, ID: "19:malejcou081i20ojmlcau0@thread.skype", Thread: "1498171086622"}
				return bot.Command{ID: "f:5261769396935243054", Text: "fix contoso --for 2h",
					User: bot.User{Name: "John Smith"}, Conv: conv, // no aadObjectId
					Origin: &bot.MessageRef{Conv: conv, ID: "1575667808184"}}
			}(),
		},
		{
			name: "docs legacy invoke with c2cmd", file: "msteams_docs_invoke_inbound.json",
			fields: map[string]any{"value": map[string]any{"c2cmd": "status"}},
			wantOK: true,
			want: func() bot.Command {
				conv := bot.Conversation{Platform: bot.Teams, ID: "19:97b1ec61-45bf-453c-9059-6e8984e0cef4_8d88f59b-ae61-4300-bec0-caace7d28446@unq.gbl.spaces"}
				return bot.Command{ID: "f:6894910862892785420", Text: "status",
					User: bot.User{Name: "John Doe"}, // no aadObjectId
					Conv: conv, Origin: &bot.MessageRef{Conv: conv, ID: "1575667808184"}}
			}(),
		},
		{
			name: "docs legacy invoke of a foreign card", file: "msteams_docs_invoke_inbound.json",
			wantOK: false,
		},
		{
			name: "a value that is not an object", file: "playground_action_submit_message.json",
			fields: map[string]any{"value": "approve r-1"},
			wantOK: false,
		},
		{
			name: "mention only", file: "playground_channel_message_with_mention.json",
			fields: map[string]any{"text": "<at>Test Bot</at>"},
			wantOK: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := fixture(t, tc.file)
			if tc.fields != nil {
				body = withFields(t, body, tc.fields)
			}
			act, err := parseActivity(body)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := act.command()
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v (command %+v)", ok, tc.wantOK, got)
			}
			if !ok {
				return
			}
			var ref schema.ConversationReference
			if err := json.Unmarshal(got.Conv.Ref, &ref); err != nil {
				t.Fatalf("Conv.Ref is not a conversation reference: %v", err)
			}
			if tc.wantRef.ServiceURL != "" && ref != tc.wantRef {
				t.Errorf("ref = %+v\nwant %+v", ref, tc.wantRef)
			}
			if ref.ServiceURL == "" || ref.Conversation.ID != got.Conv.ID || ref.Bot.ID == "" || ref.ChannelID != "msteams" {
				t.Errorf("ref lacks addressing data: %+v", ref)
			}
			if got.Origin != nil && string(got.Origin.Conv.Ref) != string(got.Conv.Ref) {
				t.Errorf("origin conversation ref differs from the command's")
			}
			got.Conv.Ref = nil
			if got.Origin != nil {
				o := *got.Origin
				o.Conv.Ref = nil
				got.Origin = &o
			}
			if g, w := mustJSON(t, got), mustJSON(t, tc.want); g != w {
				t.Errorf("command\n got %s\nwant %s", g, w)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCommandText(t *testing.T) {
	tests := []struct{ text, want string }{
		{"diagnose", "diagnose"},
		{"c2 diagnose", "diagnose"},
		{"C2 Diagnose contoso", "Diagnose contoso"},
		{"/c2 status", "status"},
		{"@c2 status", "status"},
		{"c2: help", "help"},
		{"c2", ""},
		{"c2bot status", "c2bot status"},
		{"<at>c2</at> diagnose", "diagnose"},
		{"<at>c2</at>\u00a0fix --reason \"backup job\"", "fix --reason \"backup job\""},
		{"  <at>c2</at>  revert r-3 ", "revert r-3"},
		{"approve r-1 <at>Bob</at>", "approve r-1 <at>Bob</at>"},
	}
	for _, tc := range tests {
		act := &inActivity{}
		act.Type = schema.Message
		act.Text = tc.text
		act.Recipient.ID = "28:bot"
		act.Entities = []schema.Mention{
			{Type: "mention", Text: "<at>c2</at>", Mentioned: schema.ChannelAccount{ID: "28:bot", Name: "c2"}},
			{Type: "mention", Text: "<at>Bob</at>", Mentioned: schema.ChannelAccount{ID: "29:bob", Name: "Bob"}},
			{Type: "clientInfo"},
		}
		if got := act.commandText(); got != tc.want {
			t.Errorf("commandText(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestParseActivityRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        `{"type":`,
		"no type":         `{"serviceUrl":"http://x","conversation":{"id":"c"}}`,
		"no serviceUrl":   `{"type":"message","conversation":{"id":"c"}}`,
		"file serviceUrl": `{"type":"message","serviceUrl":"file:///etc","conversation":{"id":"c"}}`,
		"no conversation": `{"type":"message","serviceUrl":"https://smba.trafficmanager.net/amer/"}`,
	} {
		if _, err := parseActivity([]byte(body)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
