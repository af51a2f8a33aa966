package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
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
	// Cloud names the Microsoft cloud whose endpoints fill the empty
	// endpoint settings (public, usgov, usgovdod, china).
	Cloud string
	// FederatedTokenFile and ManagedIdentity are secretless credentials for
	// the default tenant's app and for the Teams bot (when they have no
	// secret or certificate of their own).
	FederatedTokenFile string
	ManagedIdentity    string
	GraphTimeout       time.Duration
	ToolAccount        string
	Channels           []string

	// The tool's profile for the default tenant: product ("backup" or
	// "migration"), version ("X.Y"), how it signs in ("legacy", "delegated"
	// or "app"; empty means inferred from its sign-ins) and, for "app", its
	// application (client) id.
	Product   string
	Version   string
	ToolAuth  string
	ToolAppID string

	SlackBotToken      string
	SlackSigningSecret string
	SlackAppToken      string
	SlackAPIURL        string
	SlackTeamIDs       []string

	TeamsAppID            string
	TeamsAppPassword      string
	TeamsAppTenantID      string
	TeamsAppCert          string
	TeamsUnauthenticated  bool
	TeamsTenants          []string
	BotFrameworkOpenIDURL string
	BotFrameworkScope     string
	BotFrameworkIssuer    string

	Approvers         []string
	AllowSelfApproval bool
	DefaultDuration   time.Duration
	MinDuration       time.Duration
	MaxDuration       time.Duration
	ApprovalTTL       time.Duration
	RetryBase         time.Duration
	ApprovalsRequired int
	RequireReason     bool
	RemindBefore      time.Duration
	WatchInterval     time.Duration
	WatchCheckpoints  []time.Duration
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
	Name         string `yaml:"name"`
	TenantID     string `yaml:"tenant_id"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	ClientCert   string `yaml:"client_cert"`
	// FederatedTokenFile and ManagedIdentity: secretless credentials of
	// this tenant's app; the top-level ones apply when the tenant gives none.
	FederatedTokenFile string   `yaml:"federated_token_file"`
	ManagedIdentity    string   `yaml:"managed_identity"`
	GraphURL           string   `yaml:"graph_url"`
	AuthorityURL       string   `yaml:"authority_url"`
	ToolAccount        string   `yaml:"tool_account"`
	Product            string   `yaml:"product"`
	Version            string   `yaml:"version"`
	ToolAuth           string   `yaml:"tool_auth"`
	ToolAppID          string   `yaml:"tool_app_id"`
	Approvers          []string `yaml:"approvers"`
	AllowSelfApproval  bool     `yaml:"allow_self_approval"`
	Channels           []string `yaml:"channels"`
	// ApprovalsRequired, RequireReason and RemindBefore override the
	// top-level settings for this tenant when set ("0" turns the reminder off).
	ApprovalsRequired int    `yaml:"approvals_required"`
	RequireReason     *bool  `yaml:"require_reason"`
	RemindBefore      string `yaml:"remind_before"`
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
	num    *int
	durs   *[]time.Duration
	// zeroOK lets a duration be 0 (a feature turned off).
	zeroOK bool
}

func (s setting) env() string      { return "C2_" + s.name }
func (s setting) key() string      { return strings.ToLower(s.name) }
func (s setting) flagName() string { return strings.ReplaceAll(strings.ToLower(s.name), "_", "-") }

func (c *Config) settings() []setting {
	return []setting{
		{name: "LISTEN", help: "HTTP address for Slack HTTP mode, /api/messages, the console, /healthz, /readyz, /metrics", str: &c.Listen},
		{name: "DB", help: "bbolt database file, or a postgres:// URL for a database several replicas share", str: &c.DB},
		{name: "TENANT_NAME", help: "name of the default tenant in commands", str: &c.TenantName},
		{name: "TENANT_ID", help: "Entra tenant id of the default tenant", str: &c.TenantID},
		{name: "CLIENT_ID", help: "client id of the Entra app that reads and changes the tenant", str: &c.ClientID},
		{name: "CLIENT_SECRET", help: "client secret of that app", secret: true, str: &c.ClientSecret},
		{name: "CLIENT_CERT", help: "PEM file with that app's certificate and private key (instead of a secret)", str: &c.ClientCert},
		{name: "CLOUD", help: "Microsoft cloud whose endpoints are the defaults: " + cloudNames(), str: &c.Cloud},
		{name: "GRAPH_URL", help: "Microsoft Graph endpoint (default: the cloud's)", str: &c.GraphURL},
		{name: "AUTHORITY_URL", help: "Entra ID sign-in endpoint (default: the cloud's)", str: &c.AuthorityURL},
		{name: "FEDERATED_TOKEN_FILE", help: "workload identity token file (AKS, GitHub) for the app and the Teams bot, read on every token request, instead of a secret", str: &c.FederatedTokenFile},
		{name: "MANAGED_IDENTITY", help: "system, or the client id of a user-assigned managed identity, for the app and the Teams bot, instead of a secret", str: &c.ManagedIdentity},
		{name: "GRAPH_TIMEOUT", help: "longest wait for one answer from Graph or the sign-in endpoint before the attempt counts as failed", dur: &c.GraphTimeout},
		{name: "CA_FILE", help: "extra PEM certificates trusted for Graph and sign-in (a TLS-inspecting proxy, tests)", str: &c.CAFile},
		{name: "TOOL_ACCOUNT", help: "user principal name the backup or migration tool signs in with", str: &c.ToolAccount},
		{name: "PRODUCT", help: "the tool: backup or migration (version advice depends on it)", str: &c.Product},
		{name: "VERSION", help: "the tool's version, X.Y (Backup before 2.3 and Migration before 3.2 need an update)", str: &c.Version},
		{name: "TOOL_AUTH", help: "how the tool signs in: legacy (basic auth/IDCRL), delegated (modern auth as a user with a password) or app (its own app registration); empty: inferred from its sign-ins", str: &c.ToolAuth},
		{name: "TOOL_APP_ID", help: "the application (client) id of the tool's own app registration (tool_auth app)", str: &c.ToolAppID},
		{name: "CHANNELS", help: "comma-separated conversations bound to the default tenant (slack:C0123, teams:19:…, web:console)", list: &c.Channels},
		{name: "SLACK_BOT_TOKEN", help: "Slack bot token (xoxb-…)", secret: true, str: &c.SlackBotToken},
		{name: "SLACK_SIGNING_SECRET", help: "Slack signing secret (HTTP mode)", secret: true, str: &c.SlackSigningSecret},
		{name: "SLACK_APP_TOKEN", help: "Slack app-level token (xapp-…); turns on Socket Mode", secret: true, str: &c.SlackAppToken},
		{name: "SLACK_API_URL", help: "Slack Web API base URL", str: &c.SlackAPIURL},
		{name: "SLACK_TEAM_IDS", help: "comma-separated further Slack workspaces (T…) or Enterprise Grid organisations (E…) served besides the bot token's own", list: &c.SlackTeamIDs},
		{name: "TEAMS_APP_ID", help: "Bot Framework app id; without it (and without C2_TEAMS_UNAUTHENTICATED) Teams is off", str: &c.TeamsAppID},
		{name: "TEAMS_APP_PASSWORD", help: "Bot Framework app password", secret: true, str: &c.TeamsAppPassword},
		{name: "TEAMS_APP_TENANT_ID", help: "tenant of the single-tenant bot registration", str: &c.TeamsAppTenantID},
		{name: "TEAMS_APP_CERT", help: "PEM file with the bot app's certificate and private key (instead of a password)", str: &c.TeamsAppCert},
		{name: "BOTFRAMEWORK_OPENID_URL", help: "where inbound Bot Framework keys come from (default: the cloud's)", str: &c.BotFrameworkOpenIDURL},
		{name: "BOTFRAMEWORK_SCOPE", help: "scope of outbound Bot Connector tokens (default: the cloud's)", str: &c.BotFrameworkScope},
		{name: "BOTFRAMEWORK_ISSUER", help: "issuer of inbound Bot Framework tokens (default: the cloud's)", str: &c.BotFrameworkIssuer},
		{name: "TEAMS_UNAUTHENTICATED", help: "serve Teams without a registration, for the Agents Playground; loopback C2_LISTEN only", flag: &c.TeamsUnauthenticated},
		{name: "TEAMS_TENANTS", help: "comma-separated Entra tenant ids whose Teams users may use the bot (default: C2_TEAMS_APP_TENANT_ID)", list: &c.TeamsTenants},
		{name: "APPROVERS", help: "comma-separated platform-qualified user ids allowed to approve (slack:U024BE7LH, teams:<Entra object id>, web:bob); a bare id only when exactly one of Slack and Teams is enabled", list: &c.Approvers},
		{name: "ALLOW_SELF_APPROVAL", help: "let a requester approve their own request", flag: &c.AllowSelfApproval},
		{name: "DEFAULT_DURATION", help: "default change window", dur: &c.DefaultDuration},
		{name: "MIN_DURATION", help: "shortest change window", dur: &c.MinDuration},
		{name: "MAX_DURATION", help: "longest change window (extensions included)", dur: &c.MaxDuration},
		{name: "APPROVAL_TTL", help: "how long a request waits for approval", dur: &c.ApprovalTTL},
		{name: "RETRY_BASE", help: "first wait before retrying a failed revert or an undelivered chat notice; it doubles on each attempt, up to 15m", dur: &c.RetryBase},
		{name: "APPROVALS_REQUIRED", help: "distinct approvers needed for a change or an extension (the requester never counts when more than one is needed)", num: &c.ApprovalsRequired},
		{name: "REQUIRE_REASON", help: "fix and extend need --reason", flag: &c.RequireReason},
		{name: "REMIND_BEFORE", help: "remind the thread this long before the revert, with Extend and Revert now; 0 turns it off", dur: &c.RemindBefore, zeroOK: true},
		{name: "WATCH_INTERVAL", help: "first wait before reading the tool's sign-ins after a change; it doubles after each read, up to 1h", dur: &c.WatchInterval},
		{name: "WATCH_CHECKPOINTS", help: "comma-separated times after a change at which c2bot says it has not taken effect yet (only those inside the window)", durs: &c.WatchCheckpoints},
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
		Listen:            ":3978",
		DB:                "c2bot.db",
		TenantName:        "default",
		Cloud:             "public",
		GraphTimeout:      60 * time.Second,
		SlackAPIURL:       "https://slack.com/api/",
		DefaultDuration:   8 * time.Hour,
		MinDuration:       time.Minute,
		MaxDuration:       72 * time.Hour,
		ApprovalTTL:       time.Hour,
		RetryBase:         30 * time.Second,
		ApprovalsRequired: 1,
		RemindBefore:      30 * time.Minute,
		WatchInterval:     5 * time.Minute,
		WatchCheckpoints:  []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour},
		LogLevel:          "info",
		LogFormat:         "text",
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
	case s.dur != nil && s.zeroOK && strings.TrimSpace(v) == "0":
		*s.dur = 0
	case s.dur != nil:
		d, err := parseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %w", s.env(), err)
		}
		*s.dur = d
	case s.num != nil:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 10 {
			return fmt.Errorf("%s: %q is not a number from 1 to 10", s.env(), v)
		}
		*s.num = n
	case s.durs != nil:
		var out []time.Duration
		for _, p := range splitList(v) {
			d, err := parseDuration(p)
			if err != nil {
				return fmt.Errorf("%s: %w", s.env(), err)
			}
			out = append(out, d)
		}
		*s.durs = out
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
	if err := c.applyCloud(); err != nil {
		return err
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
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var doc map[string]yaml.Node
	if len(root.Content) > 0 {
		// Anything but a mapping of settings (a scalar, a list, an anchor
		// that swallows the rest) would otherwise be ignored silently.
		if top := root.Content[0]; top.Kind != yaml.MappingNode {
			return fmt.Errorf("config file %s: line %d: the file must be a mapping of settings (key: value)", path, top.Line)
		} else if top.Style&yaml.FlowStyle != 0 {
			// yaml.v3 silently drops whatever follows a {…} mapping at the
			// top ("{}" then "client_secret: …" reads as empty).
			return fmt.Errorf("config file %s: line %d: write the settings one per line (key: value), not as a {…} mapping", path, top.Line)
		} else if top.Column != 1 {
			// yaml.v3 silently drops later, less indented lines after an
			// indented first key: refuse rather than lose settings.
			return fmt.Errorf("config file %s: line %d: top-level settings must start at the beginning of the line", path, top.Line)
		}
		if err := root.Content[0].Decode(&doc); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
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
		if (s.list != nil || s.durs != nil) && node.Kind == yaml.SequenceNode {
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
	if c.FederatedTokenFile != "" && c.ManagedIdentity != "" {
		return errors.New("set C2_FEDERATED_TOKEN_FILE or C2_MANAGED_IDENTITY, not both")
	}
	if c.TeamsAppPassword != "" && c.TeamsAppCert != "" {
		return errors.New("set C2_TEAMS_APP_PASSWORD or C2_TEAMS_APP_CERT, not both")
	}
	if c.SlackBotToken != "" && c.SlackSigningSecret == "" && c.SlackAppToken == "" {
		return errors.New("Slack needs C2_SLACK_SIGNING_SECRET (HTTP mode) or C2_SLACK_APP_TOKEN (Socket Mode) besides C2_SLACK_BOT_TOKEN")
	}
	// A password without an app id is a mistake everywhere; an app id
	// without its password is enough for teams-package, and serve refuses
	// it when the Teams adapter is built.
	if (c.TeamsAppPassword != "" || c.TeamsAppCert != "") && c.TeamsAppID == "" {
		return errors.New("C2_TEAMS_APP_PASSWORD or C2_TEAMS_APP_CERT is set but C2_TEAMS_APP_ID is not")
	}
	if err := validateProfile(&c.Product, c.Version, &c.ToolAuth, c.ToolAppID, func(key string) string {
		return "C2_" + strings.ToUpper(key)
	}); err != nil {
		return err
	}
	names := map[string]bool{}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		if t.Name == "" {
			return errors.New("config file: every tenant needs a name")
		}
		if names[t.Name] {
			return fmt.Errorf("config file: tenant %s is listed twice", t.Name)
		}
		if t.ApprovalsRequired < 0 || t.ApprovalsRequired > 10 {
			return fmt.Errorf("config file: tenant %s: approvals_required must be from 1 to 10", t.Name)
		}
		if _, err := t.remindBefore(0); err != nil {
			return fmt.Errorf("config file: tenant %s: remind_before: %w", t.Name, err)
		}
		names[t.Name] = true
		if err := validateProfile(&t.Product, t.Version, &t.ToolAuth, t.ToolAppID, func(key string) string {
			return "config file: tenant " + t.Name + ": " + key
		}); err != nil {
			return err
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("C2_LOG_FORMAT must be text or json, not %q", c.LogFormat)
	}
	return nil
}

// Tool sign-in methods (C2_TOOL_AUTH, tool_auth).
const (
	authLegacy    = "legacy"
	authDelegated = "delegated"
	authApp       = "app"
)

var (
	versionPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+){1,3}$`)
	guidPattern    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// validateProfile checks one tenant's tool profile and lower-cases product
// and auth; name turns a YAML key ("tool_auth") into the setting an error
// names ("C2_TOOL_AUTH" or "config file: tenant contoso: tool_auth").
func validateProfile(product *string, ver string, auth *string, appID string, name func(key string) string) error {
	*product = strings.ToLower(strings.TrimSpace(*product))
	switch *product {
	case "", "backup", "migration":
	default:
		return fmt.Errorf("%s must be backup or migration, not %q", name("product"), *product)
	}
	if ver != "" && !versionPattern.MatchString(ver) {
		return fmt.Errorf("%s must be a version like 2.3, not %q", name("version"), ver)
	}
	*auth = strings.ToLower(strings.TrimSpace(*auth))
	switch *auth {
	case "", authLegacy, authDelegated:
		if appID != "" && *auth != "" {
			return fmt.Errorf("%s is set but %s is %s; an app id belongs to %s app", name("tool_app_id"), name("tool_auth"), *auth, name("tool_auth"))
		}
	case authApp:
		if appID == "" {
			return fmt.Errorf("%s is app, so %s must name the tool's application (client) id", name("tool_auth"), name("tool_app_id"))
		}
	default:
		return fmt.Errorf("%s must be legacy, delegated or app, not %q", name("tool_auth"), *auth)
	}
	if appID != "" && !guidPattern.MatchString(appID) {
		return fmt.Errorf("%s must be an application (client) id (a GUID), not %q", name("tool_app_id"), appID)
	}
	return nil
}

// remindBefore is the tenant's remind_before, or def when it has none.
func (t TenantFile) remindBefore(def time.Duration) (time.Duration, error) {
	switch strings.TrimSpace(t.RemindBefore) {
	case "":
		return def, nil
	case "0":
		return 0, nil
	}
	return parseDuration(t.RemindBefore)
}

// governance fills a tenant's approvals, reason and reminder settings from
// its file entry over the top-level ones.
func (c *Config) governance(t TenantFile) (approvals int, reason bool, remind time.Duration) {
	approvals, reason, remind = c.ApprovalsRequired, c.RequireReason, c.RemindBefore
	if t.ApprovalsRequired > 0 {
		approvals = t.ApprovalsRequired
	}
	if t.RequireReason != nil {
		reason = *t.RequireReason
	}
	remind, _ = t.remindBefore(remind) // checked by validate
	return approvals, reason, remind
}
