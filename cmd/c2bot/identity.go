package main

import (
	"fmt"

	"github.com/c2bot/c2bot/handlers"
)

// PersonFile is one person in the YAML file's people list: their ids on
// several platforms, so self-approval is caught across platforms.
type PersonFile struct {
	Name string   `yaml:"name"`
	IDs  []string `yaml:"ids"`
}

// qualifyIdentities turns every approver id, channel binding and person id
// into its platform-qualified form. A bare id means Slack or Teams when
// exactly one of them is enabled; otherwise start-up fails naming the ids.
func qualifyIdentities(tenants []handlers.TenantConfig, people []PersonFile, slackOn, teamsOn bool) ([]handlers.TenantConfig, []handlers.Person, error) {
	bare := handlers.BarePlatform(slackOn, teamsOn)
	out := make([]handlers.TenantConfig, len(tenants))
	for i, t := range tenants {
		var err error
		if t.Approvers, err = handlers.QualifyUsers(fmt.Sprintf("approvers of tenant %s (C2_APPROVERS or approvers:)", t.Name), t.Approvers, bare); err != nil {
			return nil, nil, err
		}
		if t.Channels, err = handlers.QualifyChannels(fmt.Sprintf("channels of tenant %s (C2_CHANNELS or channels:)", t.Name), t.Channels, bare); err != nil {
			return nil, nil, err
		}
		out[i] = t
	}
	var ps []handlers.Person
	for _, p := range people {
		if p.Name == "" {
			return nil, nil, fmt.Errorf("config file: every entry of people needs a name")
		}
		ids, err := handlers.QualifyUsers("ids of person "+p.Name+" (people:)", p.IDs, bare)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, handlers.Person{Name: p.Name, IDs: ids})
	}
	return out, ps, nil
}

// rates reads the rate-limit settings (validated by Config.validate).
func (c Config) rates() (user, tenant handlers.Rate) {
	if c.RateLimitUser != "" {
		user, _ = handlers.ParseRate(c.RateLimitUser)
	}
	if c.RateLimitTenant != "" {
		tenant, _ = handlers.ParseRate(c.RateLimitTenant)
	}
	return user, tenant
}
