package slack

import (
	"fmt"
	"strings"
	"sync"
)

// workspaces is the set of Slack workspaces (team ids, T…) and Enterprise
// Grid organisations (enterprise ids, E…) c2bot serves: what auth.test
// says the bot token belongs to, plus Config.TeamIDs (C2_SLACK_TEAM_IDS).
// One signing secret is shared by every install of an app, so a valid
// signature does not say which workspace a request comes from; this does.
type workspaces struct {
	mu          sync.RWMutex
	teams       map[string]bool
	enterprises map[string]bool
}

func newWorkspaces(ids []string) (*workspaces, error) {
	w := &workspaces{teams: map[string]bool{}, enterprises: map[string]bool{}}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		switch {
		case id == "":
		case strings.HasPrefix(id, "T"):
			w.teams[id] = true
		case strings.HasPrefix(id, "E"):
			w.enterprises[id] = true
		default:
			return nil, fmt.Errorf("C2_SLACK_TEAM_IDS: %q is neither a workspace id (T…) nor an Enterprise Grid id (E…)", id)
		}
	}
	return w, nil
}

// learn adds what auth.test answered: the token's workspace, or its
// organisation when the token is an organisation-wide install's
// (is_enterprise_install, or no workspace of its own). A token of one
// workspace in an organisation does not open the whole organisation.
func (w *workspaces) learn(teamID, enterpriseID string, enterpriseInstall bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case enterpriseID != "" && (enterpriseInstall || teamID == "" || teamID == enterpriseID):
		w.enterprises[enterpriseID] = true
	case strings.HasPrefix(teamID, "T"):
		w.teams[teamID] = true
	}
}

// origin is where a request says it comes from.
type origin struct {
	// team is the workspace the request was made in (team_id, team.id).
	team string
	// enterprise is that workspace's organisation (enterprise_id).
	enterprise string
	// userTeam is the home workspace of the person (user.team_id,
	// user_team); in a Slack Connect channel it is another organisation's.
	userTeam string
	// extShared says the channel is shared with another organisation.
	extShared bool
}

// refusal returns why a request from o is refused, or "" when it is from
// a workspace c2bot serves: the workspace it was made in must be allowed
// (by its id, or by its organisation's), and so must the person's own
// workspace when it differs (Slack Connect: only explicitly listed
// workspaces). The sentence is shown to the person.
func (w *workspaces) refusal(o origin) string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if len(w.teams) == 0 && len(w.enterprises) == 0 {
		return "c2bot does not know its Slack workspace yet (auth.test has not run); nothing was done."
	}
	inOrg := o.enterprise != "" && w.enterprises[o.enterprise]
	switch {
	case o.team == "" && !inOrg:
		return "c2bot cannot tell which Slack workspace this request comes from, so nothing was done."
	case o.team != "" && !w.teams[o.team] && !inOrg:
		return fmt.Sprintf("c2bot serves only its own Slack workspace; this request comes from workspace %s (an administrator can allow it with C2_SLACK_TEAM_IDS). Nothing was done.", o.team)
	}
	if o.userTeam != "" && o.userTeam != o.team && !w.teams[o.userTeam] {
		return fmt.Sprintf("c2bot takes commands only from people of its own Slack workspace; your workspace %s is not one of them (a Slack Connect channel is shared with other organisations). Nothing was done.", o.userTeam)
	}
	if o.extShared && o.userTeam == "" {
		return "This channel is shared with another organisation and Slack did not say which workspace you belong to, so nothing was done."
	}
	return ""
}
