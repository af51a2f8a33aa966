package main

import (
	"strings"
	"testing"
)

func TestCloudSetsEveryEndpointTogether(t *testing.T) {
	for _, tc := range []struct {
		cloud                               string
		graph, login, openid, scope, issuer string
	}{
		{"", "https://graph.microsoft.com", "https://login.microsoftonline.com",
			"https://login.botframework.com/v1/.well-known/openidconfiguration", "https://api.botframework.com/.default", "https://api.botframework.com"},
		{"usgov", "https://graph.microsoft.us", "https://login.microsoftonline.us",
			"https://login.botframework.azure.us/v1/.well-known/openidconfiguration", "https://api.botframework.us/.default", "https://api.botframework.us"},
		{"usgovdod", "https://dod-graph.microsoft.us", "https://login.microsoftonline.us",
			"https://login.botframework.azure.us/v1/.well-known/openidconfiguration", "https://api.botframework.us/.default", "https://api.botframework.us"},
		{"CHINA", "https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn",
			"https://login.botframework.azure.cn/v1/.well-known/openidconfiguration", "https://api.botframework.azure.cn/.default", "https://api.botframework.azure.cn"},
	} {
		env := map[string]string{}
		if tc.cloud != "" {
			env["C2_CLOUD"] = tc.cloud
		}
		cfg, err := loadWith(t, nil, env, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.cloud, err)
		}
		got := []string{cfg.GraphURL, cfg.AuthorityURL, cfg.BotFrameworkOpenIDURL, cfg.BotFrameworkScope, cfg.BotFrameworkIssuer}
		want := []string{tc.graph, tc.login, tc.openid, tc.scope, tc.issuer}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("cloud %q: endpoint %d = %q, want %q", tc.cloud, i, got[i], want[i])
			}
		}
	}
}

func TestCloudEndpointsOverriddenOneByOne(t *testing.T) {
	cfg, err := loadWith(t, []string{"--graph-url", "https://graph.example.test"},
		map[string]string{"C2_CLOUD": "usgov", "C2_BOTFRAMEWORK_ISSUER": "https://issuer.example.test"}, "cloud: china\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cloud != "usgov" {
		t.Errorf("cloud = %q; env must win over the file", cfg.Cloud)
	}
	if cfg.GraphURL != "https://graph.example.test" || cfg.BotFrameworkIssuer != "https://issuer.example.test" {
		t.Errorf("overrides lost: graph %q issuer %q", cfg.GraphURL, cfg.BotFrameworkIssuer)
	}
	if cfg.AuthorityURL != "https://login.microsoftonline.us" || cfg.BotFrameworkScope != "https://api.botframework.us/.default" {
		t.Errorf("the rest is not the cloud's: login %q scope %q", cfg.AuthorityURL, cfg.BotFrameworkScope)
	}
}

func TestUnknownCloudRefused(t *testing.T) {
	_, err := loadWith(t, nil, map[string]string{"C2_CLOUD": "mars"}, "")
	if err == nil || !strings.Contains(err.Error(), "C2_CLOUD") || !strings.Contains(err.Error(), "usgov") {
		t.Fatalf("err = %v, want one naming C2_CLOUD and the known clouds", err)
	}
}

func TestSecretlessCredentialChoice(t *testing.T) {
	cfg := Config{FederatedTokenFile: "/var/run/token", ManagedIdentity: ""}
	if f, m := secretless("s", "", "", "", cfg); f != "" || m != "" {
		t.Errorf("an app with a secret got %q %q", f, m)
	}
	if f, m := secretless("", "", "", "", cfg); f != "/var/run/token" || m != "" {
		t.Errorf("shared federated file not used: %q %q", f, m)
	}
	if f, m := secretless("", "", "", "system", cfg); f != "" || m != "system" {
		t.Errorf("the tenant's own managed identity lost: %q %q", f, m)
	}
	if _, err := loadWith(t, nil, map[string]string{"C2_FEDERATED_TOKEN_FILE": "/f", "C2_MANAGED_IDENTITY": "system"}, ""); err == nil {
		t.Error("both secretless credentials accepted")
	}
	if _, err := loadWith(t, nil, map[string]string{"C2_TEAMS_APP_ID": "a", "C2_TEAMS_APP_PASSWORD": "p", "C2_TEAMS_APP_CERT": "/c"}, ""); err == nil {
		t.Error("Teams password and certificate both accepted")
	}
}
