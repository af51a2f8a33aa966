package handlers

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a limit of Events per Per, with bursts of up to Events. A zero
// Rate means the default; Events < 0 means no limit.
type Rate struct {
	Events int
	Per    time.Duration
}

// Default limits on diagnose and fix. A diagnosis reads the tenant with
// about ten Graph requests, some on Conditional Access endpoints, which
// Microsoft throttles per tenant (DESIGN.md, "Facts that shape the code").
var (
	DefaultUserRate   = Rate{Events: 10, Per: 10 * time.Minute}
	DefaultTenantRate = Rate{Events: 30, Per: 10 * time.Minute}
)

// Off reports whether r imposes no limit.
func (r Rate) Off() bool { return r.Events < 0 }

// String renders r as ParseRate reads it: "10/10m", or "off".
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.Events) + "/" + humanDuration(r.Per)
}

// ParseRate reads "N/duration" ("10/10m", "30/1h", "5/1d") or "off".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "off" || s == "0" {
		return Rate{Events: -1}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	events, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || events <= 0 || events > 1_000_000 {
		return Rate{}, fmt.Errorf("%q is not a rate: write N/duration (10/10m) or off", s)
	}
	d, err := ParseDuration(per)
	if err != nil {
		return Rate{}, fmt.Errorf("%q is not a rate: %v", s, err)
	}
	return Rate{Events: events, Per: d}, nil
}

// maxLimiterKeys bounds the per-user table; when full, users whose
// allowance has refilled are forgotten (they lose nothing).
const maxLimiterKeys = 10000

// limiters holds the token buckets of diagnose and fix, per person and per
// tenant, on the core's clock.
type limiters struct {
	user, tenant Rate
	mu           sync.Mutex
	users        map[string]*rate.Limiter
	tenants      map[string]*rate.Limiter
}

func newLimiters(user, tenant Rate) (*limiters, error) {
	if user == (Rate{}) {
		user = DefaultUserRate
	}
	if tenant == (Rate{}) {
		tenant = DefaultTenantRate
	}
	for _, r := range []Rate{user, tenant} {
		if !r.Off() && (r.Events == 0 || r.Per <= 0) {
			return nil, fmt.Errorf("handlers: rate %d per %s is not a limit", r.Events, r.Per)
		}
	}
	return &limiters{user: user, tenant: tenant, users: map[string]*rate.Limiter{}, tenants: map[string]*rate.Limiter{}}, nil
}

func bucket(m map[string]*rate.Limiter, key string, r Rate, now time.Time) *rate.Limiter {
	l, ok := m[key]
	if !ok {
		if len(m) >= maxLimiterKeys {
			for k, old := range m {
				if old.TokensAt(now) >= float64(old.Burst()) {
					delete(m, k)
				}
			}
		}
		l = rate.NewLimiter(rate.Every(r.Per/time.Duration(r.Events)), r.Events)
		m[key] = l
	}
	return l
}

// rateLimited is the refusal of a limited command: who or what was limited
// and when to try again.
type rateLimited struct {
	tenant string // "" when the person was limited
	rate   Rate
	wait   time.Duration
}

// allow takes one token for person and one for tenant at now, or neither;
// it returns nil or a *rateLimited.
func (l *limiters) allow(person, tenant string, now time.Time) *rateLimited {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ru, rt *rate.Reservation
	if !l.user.Off() {
		ru = bucket(l.users, person, l.user, now).ReserveN(now, 1)
		if d := ru.DelayFrom(now); d > 0 {
			ru.CancelAt(now)
			return &rateLimited{rate: l.user, wait: d}
		}
	}
	if !l.tenant.Off() {
		rt = bucket(l.tenants, tenant, l.tenant, now).ReserveN(now, 1)
		if d := rt.DelayFrom(now); d > 0 {
			rt.CancelAt(now)
			if ru != nil {
				ru.CancelAt(now)
			}
			return &rateLimited{tenant: tenant, rate: l.tenant, wait: d}
		}
	}
	return nil
}

// limit refuses a diagnose, fix or signins (the commands that read the
// tenant through Graph) when its sender or its tenant is over
// the limit, with a reply saying which and when to try again.
func (c *Core) limit(verb, who, tenant string) error {
	key := who
	if i, ok := c.people[who]; ok {
		key = "person:" + strconv.Itoa(i) // one allowance per person, whatever the platform
	}
	rl := c.limits.allow(key, tenant, c.now())
	if rl == nil {
		return nil
	}
	c.observe("rate_limited")
	if platform, _, ok := splitQualified(who); ok {
		c.metrics.Refused(platform, RefusedRateLimited)
	}
	wait := humanDuration(rl.wait.Round(time.Second) + time.Second)
	if rl.tenant != "" {
		return userErrorf("Tenant %s has had too many diagnose, fix and signins requests (at most %d per %s, to stay within Microsoft Graph's throttling limits). Try “%s” again in %s.",
			rl.tenant, rl.rate.Events, humanDuration(rl.rate.Per), verb, wait)
	}
	return userErrorf("You are running diagnose, fix and signins too often (at most %d per %s per person). Try “%s” again in %s.",
		rl.rate.Events, humanDuration(rl.rate.Per), verb, wait)
}
