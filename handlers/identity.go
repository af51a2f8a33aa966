package handlers

import (
	"fmt"
	"slices"
	"strings"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
)

// Identities are platform-qualified: "slack:U024BE7LH", "teams:<Entra
// object id>", "web:bob". Approver lists, channel bindings, people, the
// requester and approver stored on a request and the actor of every audit
// event use this form, so an id on one platform never matches the same
// string on another.

// idPlatforms are the platforms an id may be qualified with.
var idPlatforms = []string{bot.Slack, bot.Teams, bot.Web}

// Person groups the ids one person has on several platforms, so that
// self-approval is caught across them (Alice asks in Slack and approves in
// Teams: refused). Being listed here grants nothing: approvers are still
// only the ids in a tenant's approver list.
type Person struct {
	Name string
	IDs  []string
}

// userID is the canonical qualified form of a user id on a platform. Teams
// users are Entra object ids (GUIDs), which compare case-insensitively.
func userID(platform, id string) string {
	if platform == bot.Teams {
		id = strings.ToLower(id)
	}
	return platform + ":" + id
}

// actorID is the qualified id of who sent cmd. The platform comes from the
// adapter that built the command (Conv.Platform), never from the user.
func actorID(cmd bot.Command) string { return userID(cmd.Conv.Platform, cmd.User.ID) }

// splitQualified returns the platform and the rest of a qualified id; ok is
// false for a bare id.
func splitQualified(id string) (platform, rest string, ok bool) {
	p, rest, found := strings.Cut(id, ":")
	p = strings.ToLower(p)
	if !found || rest == "" || !slices.Contains(idPlatforms, p) {
		return "", "", false
	}
	return p, rest, true
}

// storedID is the qualified id of a person stored on a request. Requests
// created before ids were qualified hold bare ids; those are read as ids of
// the platform the request was made on.
func storedID(r store.Request, p store.Person) string {
	if p.ID == "" {
		return ""
	}
	if platform, rest, ok := splitQualified(p.ID); ok {
		return userID(platform, rest)
	}
	return userID(decodeConv(r).Platform, p.ID)
}

// BarePlatform returns the platform a bare id in the configuration means:
// Slack or Teams when exactly one of them is enabled, "" otherwise (then a
// bare id is an error).
func BarePlatform(slackEnabled, teamsEnabled bool) string {
	switch {
	case slackEnabled && !teamsEnabled:
		return bot.Slack
	case teamsEnabled && !slackEnabled:
		return bot.Teams
	}
	return ""
}

// QualifyUsers returns user ids in their qualified form: "slack:U1" stays
// (its platform lower-cased, a Teams object id lower-cased), a bare "U1"
// becomes bare+":U1". When bare is "" and some id is bare, the error names
// every such id and says how to write them; what names the setting.
func QualifyUsers(what string, ids []string, bare string) ([]string, error) {
	return qualify(what, ids, bare, userID)
}

// QualifyChannels is QualifyUsers for conversation keys ("slack:C0123",
// "teams:19:…@thread.tacv2", "web:console"). Conversation ids keep their case.
func QualifyChannels(what string, ids []string, bare string) ([]string, error) {
	return qualify(what, ids, bare, func(platform, id string) string { return platform + ":" + id })
}

func qualify(what string, ids []string, bare string, canon func(platform, id string) string) ([]string, error) {
	out := make([]string, 0, len(ids))
	var unqualified []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if len(id) > maxIDLen {
			return nil, fmt.Errorf("%s: id %.20q… is longer than %d characters", what, id, maxIDLen)
		}
		// A Teams conversation id ("19:…", "a:…") is bare: its prefix is no platform.
		if platform, rest, ok := splitQualified(id); ok {
			out = append(out, canon(platform, rest))
			continue
		}
		if bare == "" {
			unqualified = append(unqualified, id)
			continue
		}
		out = append(out, canon(bare, id))
	}
	if len(unqualified) > 0 {
		return nil, fmt.Errorf("%s: %s %s no platform, and a bare id is accepted only when exactly one of Slack and Teams is enabled; write slack:%s, teams:%s or web:%s",
			what, strings.Join(unqualified, ", "), pluralHas(len(unqualified)), unqualified[0], unqualified[0], unqualified[0])
	}
	return out, nil
}

func pluralHas(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

// maxIDLen bounds an id in the configuration and in commands.
const maxIDLen = 256

// checkQualified reports the first id in ids that is not qualified.
func checkQualified(what string, ids []string) error {
	for _, id := range ids {
		if _, _, ok := splitQualified(id); !ok {
			return fmt.Errorf("handlers: %s: %q is not a platform-qualified id (slack:…, teams:…, web:…)", what, id)
		}
	}
	return nil
}

// indexPeople maps every qualified id of a person to the person's index;
// an id listed for two people is an error.
func indexPeople(people []Person) (map[string]int, error) {
	idx := map[string]int{}
	for i, p := range people {
		if err := checkQualified("person "+p.Name, p.IDs); err != nil {
			return nil, err
		}
		for _, id := range p.IDs {
			id = canonical(id)
			if j, dup := idx[id]; dup && j != i {
				return nil, fmt.Errorf("handlers: id %s is listed for both %s and %s", id, people[j].Name, p.Name)
			}
			idx[id] = i
		}
	}
	return idx, nil
}

// canonical returns a qualified user id in canonical form.
func canonical(id string) string {
	if platform, rest, ok := splitQualified(id); ok {
		return userID(platform, rest)
	}
	return id
}

// samePerson reports whether two qualified user ids belong to one person:
// equal, or listed together under people.
func (c *Core) samePerson(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	i, okA := c.people[a]
	j, okB := c.people[b]
	return okA && okB && i == j
}

// isApprover reports whether the qualified user id may approve in t.
func isApprover(t *TenantConfig, id string) bool {
	return slices.Contains(t.Approvers, id)
}
