package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/c2bot/c2bot/handlers"
)

// Config is every setting of c2bot. Each is a flag, an environment variable
// C2_<NAME> and a key in the optional YAML file named by C2_CONFIG; flags
// win over the environment, the environment over the file.
type Config struct {
	Listen string
	DB     string

	TenantName   string
	TenantID     string
	ClientID     string
	ClientSecret string
	ClientCert   string
	GraphURL     string
	AuthorityURL string
	CAFile       string
	GraphTimeout time.Duration
	ToolAccount  string
	Channels     []string

	SlackBotToken      string
	SlackSigningSecret string
	SlackAppToken      string
	SlackAPIURL        string
	SlackTeamIDs       []string

	TeamsAppID            string
	TeamsAppPassword      string
	TeamsAppTenantID      string
	TeamsUnauthenticated  bool
	TeamsTenants          []string
	BotFrameworkOpenIDURL string

	Approvers         []string
	AllowSelfApproval bool
	DefaultDuration   time.Duration
	MinDuration       time.Duration
	MaxDuration       time.Duration
	ApprovalTTL       time.Duration
	RetryBase         time.Duration
	// RateLimitUser and RateLimitTenant limit diagnose, fix and signins
	// ("10/10m", "off"); empty means the default.
	RateLimitUser   string
	RateLimitTenant string

	Console   bool
	LogLevel  string
	LogFormat string

	// Tenants come from the YAML file only (an MSP's customers).
	Tenants []TenantFile
	// People come from the YAML file only: one person's ids across platforms.
	People []PersonFile
}

// TenantFile is one tenant in the YAML file.
type TenantFile struct {
	Name              string   `yaml:"name"`
	TenantID          string   `yaml:"tenant_id"`
	ClientID          string   `yaml:"client_id"`
	ClientSecret      string   `yaml:"client_secret"`
	ClientCert        string   `yaml:"client_cert"`
	GraphURL          string   `yaml:"graph_url"`
	AuthorityURL      string   `yaml:"authority_url"`
	ToolAccount       string   `yaml:"tool_account"`
	Product           string   `yaml:"product"`
	Version           string   `yaml:"version"`
	Approvers         []string `yaml:"approvers"`
	AllowSelfApproval bool     `yaml:"allow_self_approval"`
	Channels          []string `yaml:"channels"`
}

// setting describes one configuration value.
type setting struct {
	name   string // env suffix and, lower-cased, the YAML key; flag name is lower-kebab
	help   string
	secret bool
	str    *string
	list   *[]string
	flag   *bool
	dur    *time.Duration
}

func (s setting) env() string      { return "C2_" + s.name }
func (s setting) key() string      { return strings.ToLower(s.name) }
func (s setting) flagName() string { return strings.ReplaceAll(strings.ToLower(s.name), "_", "-") }

func (c *Config) settings() []setting {
	return []setting{
		{name: "LISTEN", help: "HTTP address for Slack HTTP mode, /api/messages, the console, /healthz, /readyz, /metrics", str: &c.Listen},
		{name: "DB", help: "bbolt database file", str: &c.DB},
		{name: "TENANT_NAME", help: "name of the default tenant in commands", str: &c.TenantName},
		{name: "TENANT_ID", help: "Entra tenant id of the default tenant", str: &c.TenantID},
		{name: "CLIENT_ID", help: "client id of the Entra app that reads and changes the tenant", str: &c.ClientID},
		{name: "CLIENT_SECRET", help: "client secret of that app", secret: true, str: &c.ClientSecret},
		{name: "CLIENT_CERT", help: "PEM file with that app's certificate and private key (instead of a secret)", str: &c.ClientCert},
		{name: "GRAPH_URL", help: "Microsoft Graph endpoint", str: &c.GraphURL},
		{name: "AUTHORITY_URL", help: "Entra ID sign-in endpoint", str: &c.AuthorityURL},
		{name: "GRAPH_TIMEOUT", help: "longest wait for one answer from Graph or the sign-in endpoint before the attempt counts as failed", dur: &c.GraphTimeout},
		{name: "CA_FILE", help: "extra PEM certificates trusted for Graph and sign-in (a TLS-inspecting proxy, tests)", str: &c.CAFile},
		{name: "TOOL_ACCOUNT", help: "user principal name the backup or migration tool signs in with", str: &c.ToolAccount},
		{name: "CHANNELS", help: "comma-separated conversations bound to the default tenant (slack:C0123, teams:19:…, web:console)", list: &c.Channels},
		{name: "SLACK_BOT_TOKEN", help: "Slack bot token (xoxb-…)", secret: true, str: &c.SlackBotToken},
		{name: "SLACK_SIGNING_SECRET", help: "Slack signing secret (HTTP mode)", secret: true, str: &c.SlackSigningSecret},
		{name: "SLACK_APP_TOKEN", help: "Slack app-level token (xapp-…); turns on Socket Mode", secret: true, str: &c.SlackAppToken},
		{name: "SLACK_API_URL", help: "Slack Web API base URL", str: &c.SlackAPIURL},
		{name: "SLACK_TEAM_IDS", help: "comma-separated further Slack workspaces (T…) or Enterprise Grid organisations (E…) served besides the bot token's own", list: &c.SlackTeamIDs},
		{name: "TEAMS_APP_ID", help: "Bot Framework app id; without it (and without C2_TEAMS_UNAUTHENTICATED) Teams is off", str: &c.TeamsAppID},
		{name: "TEAMS_APP_PASSWORD", help: "Bot Framework app password", secret: true, str: &c.TeamsAppPassword},
		{name: "TEAMS_APP_TENANT_ID", help: "tenant of the single-tenant bot registration", str: &c.TeamsAppTenantID},
		{name: "TEAMS_UNAUTHENTICATED", help: "serve Teams without a registration, for the Agents Playground; loopback C2_LISTEN only", flag: &c.TeamsUnauthenticated},
		{name: "TEAMS_TENANTS", help: "comma-separated Entra tenant ids whose Teams users may use the bot (default: C2_TEAMS_APP_TENANT_ID)", list: &c.TeamsTenants},
		{name: "BOTFRAMEWORK_OPENID_URL", help: "where inbound Bot Framework keys come from", str: &c.BotFrameworkOpenIDURL},
		{name: "APPROVERS", help: "comma-separated platform-qualified user ids allowed to approve (slack:U024BE7LH, teams:<Entra object id>, web:bob); a bare id only when exactly one of Slack and Teams is enabled", list: &c.Approvers},
		{name: "ALLOW_SELF_APPROVAL", help: "let a requester approve their own request", flag: &c.AllowSelfApproval},
		{name: "DEFAULT_DURATION", help: "default change window", dur: &c.DefaultDuration},
		{name: "MIN_DURATION", help: "shortest change window", dur: &c.MinDuration},
		{name: "MAX_DURATION", help: "longest change window (extensions included)", dur: &c.MaxDuration},
		{name: "APPROVAL_TTL", help: "how long a request waits for approval", dur: &c.ApprovalTTL},
		{name: "RETRY_BASE", help: "first wait before retrying a failed revert or an undelivered chat notice; it doubles on each attempt, up to 15m", dur: &c.RetryBase},
		{name: "RATE_LIMIT_USER", help: "diagnose, fix and signins allowed per person, N/duration or off (default 10/10m)", str: &c.RateLimitUser},
		{name: "RATE_LIMIT_TENANT", help: "diagnose, fix and signins allowed per tenant, N/duration or off (default 30/10m)", str: &c.RateLimitTenant},
		{name: "CONSOLE", help: "serve the local console (loopback addresses only)", flag: &c.Console},
		{name: "LOG_LEVEL", help: "debug, info, warn or error", str: &c.LogLevel},
		{name: "LOG_FORMAT", help: "text or json", str: &c.LogFormat},
	}
}

// defaults returns the documented defaults.
func defaults() Config {
	return Config{
		Listen:                ":3978",
		DB:                    "c2bot.db",
		TenantName:            "default",
		GraphURL:              "https://graph.microsoft.com",
		AuthorityURL:          "https://login.microsoftonline.com",
		GraphTimeout:          60 * time.Second,
		SlackAPIURL:           "https://slack.com/api/",
		BotFrameworkOpenIDURL: "https://login.botframework.com/v1/.well-known/openidconfiguration",
		DefaultDuration:       8 * time.Hour,
		MinDuration:           time.Minute,
		MaxDuration:           72 * time.Hour,
		ApprovalTTL:           time.Hour,
		RetryBase:             30 * time.Second,
		LogLevel:              "info",
		LogFormat:             "text",
	}
}

func (s setting) set(v string) error {
	switch {
	case s.str != nil:
		*s.str = v
	case s.list != nil:
		*s.list = splitList(v)
	case s.flag != nil:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", s.env(), v)
		}
		*s.flag = b
	case s.dur != nil:
		d, err := parseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %w", s.env(), err)
		}
		*s.dur = d
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if strings.HasSuffix(v, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (90m, 8h, 2d)", v)
	}
	return d, nil
}

// registerFlags adds a flag for every setting to fs; load applies the ones given.
func registerFlags(fs *flag.FlagSet, c *Config) {
	for _, s := range c.settings() {
		help := s.help + " (env " + s.env() + ")"
		if s.flag != nil {
			fs.Var(&boolValue{}, s.flagName(), help)
			continue
		}
		fs.String(s.flagName(), "", help)
	}
}

// boolValue is a flag that may be given bare (--console) or with a value.
type boolValue struct{ v string }

func (b *boolValue) String() string     { return b.v }
func (b *boolValue) Set(v string) error { b.v = v; return nil }
func (b *boolValue) IsBoolFlag() bool   { return true }

// load fills c from the file, the environment and the flags set on fs, in
// that order of increasing precedence, and validates the result.
func load(c *Config, fs *flag.FlagSet, getenv func(string) string) error {
	if path := getenv("C2_CONFIG"); path != "" {
		if err := loadFile(c, path); err != nil {
			return err
		}
	}
	for _, s := range c.settings() {
		if v, ok := lookupEnv(getenv, s.env()); ok {
			if err := s.set(v); err != nil {
				return err
			}
		}
	}
	var ferr error
	byFlag := map[string]setting{}
	for _, s := range c.settings() {
		byFlag[s.flagName()] = s
	}
	fs.Visit(func(f *flag.Flag) {
		s, ok := byFlag[f.Name]
		if !ok || ferr != nil {
			return
		}
		if err := s.set(f.Value.String()); err != nil {
			ferr = fmt.Errorf("--%s: %w", f.Name, err)
		}
	})
	if ferr != nil {
		return ferr
	}
	return c.validate()
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		return os.LookupEnv(name)
	}
	v := getenv(name)
	return v, v != ""
}

// loadFile reads the YAML file: top-level keys are the lower-case setting
// names ("listen", "approvers", "default_duration"), plus "tenants".
func loadFile(c *Config, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	known := map[string]setting{}
	for _, s := range c.settings() {
		known[s.key()] = s
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		node := doc[k]
		if k == "people" {
			if err := node.Decode(&c.People); err != nil {
				return fmt.Errorf("config file %s: people: %w", path, err)
			}
			continue
		}
		if k == "tenants" {
			if err := node.Decode(&c.Tenants); err != nil {
				return fmt.Errorf("config file %s: tenants: %w", path, err)
			}
			continue
		}
		s, ok := known[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q (line %d)", path, k, node.Line)
		}
		var v string
		if s.list != nil && node.Kind == yaml.SequenceNode {
			var items []string
			if err := node.Decode(&items); err != nil {
				return fmt.Errorf("config file %s: %s: %w", path, k, err)
			}
			v = strings.Join(items, ",")
		} else if err := node.Decode(&v); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, k, err)
		}
		if err := s.set(v); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	return nil
}

func (c *Config) validate() error {
	for _, r := range []struct{ env, v string }{{"C2_RATE_LIMIT_USER", c.RateLimitUser}, {"C2_RATE_LIMIT_TENANT", c.RateLimitTenant}} {
		if r.v == "" {
			continue
		}
		if _, err := handlers.ParseRate(r.v); err != nil {
			return fmt.Errorf("%s: %w", r.env, err)
		}
	}
	if c.MinDuration > c.MaxDuration {
		return fmt.Errorf("C2_MIN_DURATION (%s) exceeds C2_MAX_DURATION (%s)", c.MinDuration, c.MaxDuration)
	}
	if c.DefaultDuration < c.MinDuration || c.DefaultDuration > c.MaxDuration {
		return fmt.Errorf("C2_DEFAULT_DURATION (%s) must lie between C2_MIN_DURATION (%s) and C2_MAX_DURATION (%s)", c.DefaultDuration, c.MinDuration, c.MaxDuration)
	}
	if c.ClientSecret != "" && c.ClientCert != "" {
		return errors.New("set C2_CLIENT_SECRET or C2_CLIENT_CERT, not both")
	}
	if c.SlackBotToken != "" && c.SlackSigningSecret == "" && c.SlackAppToken == "" {
		return errors.New("Slack needs C2_SLACK_SIGNING_SECRET (HTTP mode) or C2_SLACK_APP_TOKEN (Socket Mode) besides C2_SLACK_BOT_TOKEN")
	}
	// A password without an app id is a mistake everywhere; an app id
	// without its password is enough for teams-package, and serve refuses
	// it when the Teams adapter is built.
	if c.TeamsAppPassword != "" && c.TeamsAppID == "" {
		return errors.New("C2_TEAMS_APP_PASSWORD is set but C2_TEAMS_APP_ID is not")
	}
	names := map[string]bool{}
	for _, t := range c.Tenants {
		if t.Name == "" {
			return errors.New("config file: every tenant needs a name")
		}
		if names[t.Name] {
			return fmt.Errorf("config file: tenant %s is listed twice", t.Name)
		}
		names[t.Name] = true
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("C2_LOG_FORMAT must be text or json, not %q", c.LogFormat)
	}
	return nil
}
