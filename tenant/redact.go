package tenant

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// redactedMark replaces every credential Redact finds.
const redactedMark = "[redacted]"

// credentialKeys are the names whose values are credentials, in a form
// body or query (client_secret=…), in JSON ("client_secret":"…") and in a
// header-like line (client_secret: …). They cover the OAuth 2.0 client
// credentials and assertion grants MSAL sends (RFC 6749 §2.3.1, RFC 7523)
// and the tokens an authority answers, and the ticket of a Slack Socket
// Mode URL.
const credentialKeys = `client_secret|client_assertion|assertion|refresh_token|access_token|id_token|password|code_verifier|app_password|signing_secret|ticket|token`

var (
	formCredential   = regexp.MustCompile(`(?i)(` + credentialKeys + `)(=)[^&\s"'<>]*`)
	jsonCredential   = regexp.MustCompile(`(?i)("(?:` + credentialKeys + `)"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	headerCredential = regexp.MustCompile(`(?i)(` + credentialKeys + `)(\s*:\s*)[^\s,;"'<>]+`)
	authScheme       = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]+=*`)
	jwtLike          = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	slackToken       = regexp.MustCompile(`\bx(?:ox[abposre]|app)-[A-Za-z0-9-]+`)
)

// minSecretLen is the shortest known secret replaced wherever it appears;
// shorter values would redact ordinary words.
const minSecretLen = 4

// Redact returns s with every credential removed: each of secrets as it
// is, form-encoded, path-escaped and JSON-escaped, and any value of a
// credential name (client_secret, client_assertion, assertion,
// refresh_token, access_token, …) in form, JSON or header syntax, bearer
// and basic credentials, JSON Web Tokens and Slack tokens. An authority or
// API that echoes the request body cannot put a secret into an error, a
// log line or a chat message through text that went through Redact.
//
// bot.Redact is the same function for the chat adapters (tenant imports no
// other project package); cmd/c2bot's TestRedactorsAgree keeps the two
// identical.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < minSecretLen {
			continue
		}
		forms := []string{sec, url.QueryEscape(sec), url.PathEscape(sec)}
		if b, err := json.Marshal(sec); err == nil {
			// As Go writes it (<, > and & as \u00XX), as most other
			// encoders do (them as they are), and either with "/" as "\/".
			j := strings.Trim(string(b), `"`)
			plain := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(j)
			for _, v := range []string{j, plain} {
				forms = append(forms, v, strings.ReplaceAll(v, "/", `\/`))
			}
		}
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, redactedMark)
		}
	}
	s = jsonCredential.ReplaceAllString(s, `$1"`+redactedMark+`"`)
	s = formCredential.ReplaceAllString(s, `$1$2`+redactedMark)
	s = headerCredential.ReplaceAllString(s, `$1$2`+redactedMark)
	s = authScheme.ReplaceAllString(s, `$1$2`+redactedMark)
	s = jwtLike.ReplaceAllString(s, redactedMark)
	s = slackToken.ReplaceAllString(s, redactedMark)
	return s
}
