package main

import (
	"fmt"
	"sort"
	"strings"
)

// cloud is one Microsoft cloud's endpoints: where Graph and Entra sign-in
// live, and the Bot Framework's OpenID metadata, token scope, token issuer
// and channel service.
type cloud struct {
	Name           string
	Description    string
	GraphURL       string
	AuthorityURL   string
	BotOpenIDURL   string
	BotScope       string
	BotIssuer      string
	ChannelService string
}

// clouds are the values of C2_CLOUD. Sources:
//   - Graph and Entra endpoints: https://learn.microsoft.com/graph/deployments
//     ("App registration and token service root endpoints", "Microsoft Graph
//     and Graph Explorer service root endpoints").
//   - Bot Framework, US Government: GovernmentAuthenticationConstants of the
//     Bot Framework SDK, https://learn.microsoft.com/dotnet/api/microsoft.bot.connector.authentication.governmentauthenticationconstants
//     (channel service https://botframework.azure.us, scope and issuer
//     https://api.botframework.us, OpenID metadata on login.botframework.azure.us).
//   - Bot Framework, 21Vianet: the China constants of the Microsoft 365 Agents
//     SDK, https://learn.microsoft.com/dotnet/api/microsoft.agents.authentication.authenticationconstants
//     (ChinaAzureBotServiceOpenIdMetadataUrl, ChinaBotFrameworkTokenIssuer),
//     and https://learn.microsoft.com/azure/bot-service/ref-oauth-redirect-urls.
var clouds = map[string]cloud{
	"public": {
		Name: "public", Description: "Microsoft's global cloud (commercial, GCC)",
		GraphURL: "https://graph.microsoft.com", AuthorityURL: "https://login.microsoftonline.com",
		BotOpenIDURL: "https://login.botframework.com/v1/.well-known/openidconfiguration",
		BotScope:     "https://api.botframework.com/.default", BotIssuer: "https://api.botframework.com",
		ChannelService: "",
	},
	"usgov": {
		Name: "usgov", Description: "Microsoft Cloud for US Government (GCC High)",
		GraphURL: "https://graph.microsoft.us", AuthorityURL: "https://login.microsoftonline.us",
		BotOpenIDURL: "https://login.botframework.azure.us/v1/.well-known/openidconfiguration",
		BotScope:     "https://api.botframework.us/.default", BotIssuer: "https://api.botframework.us",
		ChannelService: "https://botframework.azure.us",
	},
	"usgovdod": {
		Name: "usgovdod", Description: "Microsoft Cloud for US Government, DoD",
		GraphURL: "https://dod-graph.microsoft.us", AuthorityURL: "https://login.microsoftonline.us",
		BotOpenIDURL: "https://login.botframework.azure.us/v1/.well-known/openidconfiguration",
		BotScope:     "https://api.botframework.us/.default", BotIssuer: "https://api.botframework.us",
		ChannelService: "https://botframework.azure.us",
	},
	"china": {
		Name: "china", Description: "Microsoft Azure and Microsoft 365 operated by 21Vianet",
		GraphURL: "https://microsoftgraph.chinacloudapi.cn", AuthorityURL: "https://login.chinacloudapi.cn",
		BotOpenIDURL: "https://login.botframework.azure.cn/v1/.well-known/openidconfiguration",
		BotScope:     "https://api.botframework.azure.cn/.default", BotIssuer: "https://api.botframework.azure.cn",
		ChannelService: "https://botframework.azure.cn",
	},
}

func cloudNames() string {
	names := make([]string, 0, len(clouds))
	for n := range clouds {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// applyCloud fills every endpoint setting left empty from C2_CLOUD: the
// cloud sets them together, and each can still be set on its own.
func (c *Config) applyCloud() error {
	name := strings.ToLower(strings.TrimSpace(c.Cloud))
	if name == "" {
		name = "public"
	}
	cl, ok := clouds[name]
	if !ok {
		return fmt.Errorf("C2_CLOUD must be one of %s, not %q", cloudNames(), c.Cloud)
	}
	c.Cloud = name
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&c.GraphURL, cl.GraphURL)
	fill(&c.AuthorityURL, cl.AuthorityURL)
	fill(&c.BotFrameworkOpenIDURL, cl.BotOpenIDURL)
	fill(&c.BotFrameworkScope, cl.BotScope)
	fill(&c.BotFrameworkIssuer, cl.BotIssuer)
	return nil
}
