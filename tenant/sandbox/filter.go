package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A small OData $filter parser for /auditLogs/signIns: comparisons joined by
// "and" (parentheses allowed), string literals in single quotes with ''
// for a quote, DateTimeOffset and integer literals unquoted.

type literalKind int

const (
	litString literalKind = iota
	litTime
	litInt
	litBool
)

type condition struct {
	field string // canonical property path, e.g. "status/errorCode"
	op    string // eq ne gt ge lt le
	kind  literalKind
	str   string
	t     time.Time
	n     int64
	b     bool
}

// signInFilterFields maps the filterable properties (lower case) to their
// canonical name and literal kind.
var signInFilterFields = map[string]struct {
	name string
	kind literalKind
}{
	"createddatetime":         {"createdDateTime", litTime},
	"userprincipalname":       {"userPrincipalName", litString},
	"userid":                  {"userId", litString},
	"userdisplayname":         {"userDisplayName", litString},
	"appid":                   {"appId", litString},
	"appdisplayname":          {"appDisplayName", litString},
	"clientappused":           {"clientAppUsed", litString},
	"conditionalaccessstatus": {"conditionalAccessStatus", litString},
	"correlationid":           {"correlationId", litString},
	"id":                      {"id", litString},
	"ipaddress":               {"ipAddress", litString},
	"resourcedisplayname":     {"resourceDisplayName", litString},
	"status/errorcode":        {"status/errorCode", litInt},
	"isinteractive":           {"isInteractive", litBool},
}

type filterParser struct {
	src string
	pos int
}

// parseFilter returns the conditions of a conjunction.
func parseFilter(src string) ([]condition, error) {
	p := &filterParser{src: src}
	conds, err := p.conjunction()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("unexpected %q at position %d", p.rest(), p.pos)
	}
	return conds, nil
}

func (p *filterParser) rest() string {
	r := p.src[p.pos:]
	if len(r) > 20 {
		r = r[:20] + "…"
	}
	return r
}

func (p *filterParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// word reads an identifier or an unquoted literal.
func (p *filterParser) word() string {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == ' ' || c == '\t' || c == '(' || c == ')' || c == '\'' || c == ',' {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *filterParser) conjunction() ([]condition, error) {
	var out []condition
	for {
		conds, err := p.term()
		if err != nil {
			return nil, err
		}
		out = append(out, conds...)
		save := p.pos
		w := p.word()
		switch strings.ToLower(w) {
		case "and":
			continue
		case "or", "not":
			return nil, fmt.Errorf("operator %q is not supported", w)
		}
		p.pos = save
		return out, nil
	}
}

func (p *filterParser) term() ([]condition, error) {
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '(' {
		p.pos++
		conds, err := p.conjunction()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return nil, fmt.Errorf("missing ')' at position %d", p.pos)
		}
		p.pos++
		return conds, nil
	}
	name := p.word()
	if name == "" {
		return nil, fmt.Errorf("expected a property at position %d", p.pos)
	}
	if strings.EqualFold(name, "signInEventTypes/any") {
		return p.anyEventType()
	}
	f, ok := signInFilterFields[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("could not find a property named '%s' on type 'microsoft.graph.signIn'", name)
	}
	op := strings.ToLower(p.word())
	switch op {
	case "eq", "ne":
	case "gt", "ge", "lt", "le":
		if f.kind != litTime && f.kind != litInt {
			return nil, fmt.Errorf("operator '%s' is not supported for property '%s'", op, f.name)
		}
	default:
		return nil, fmt.Errorf("expected a comparison operator after '%s', found '%s'", name, op)
	}
	c := condition{field: f.name, op: op, kind: f.kind}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '\'' {
		s, err := p.quoted()
		if err != nil {
			return nil, err
		}
		if f.kind != litString {
			return nil, fmt.Errorf("a string literal cannot be compared with property '%s'", f.name)
		}
		c.str = s
		return []condition{c}, nil
	}
	lit := p.word()
	switch f.kind {
	case litTime:
		t, err := time.Parse(time.RFC3339Nano, lit)
		if err != nil {
			return nil, fmt.Errorf("'%s' is not a valid DateTimeOffset literal", lit)
		}
		c.t = t
	case litInt:
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("'%s' is not a valid integer literal", lit)
		}
		c.n = n
	case litBool:
		switch lit {
		case "true", "false":
			c.b = lit == "true"
		default:
			return nil, fmt.Errorf("'%s' is not a valid boolean literal", lit)
		}
	default:
		return nil, fmt.Errorf("property '%s' needs a string literal in single quotes, found '%s'", f.name, lit)
	}
	return []condition{c}, nil
}

// quoted reads a single-quoted string where two quotes stand for one.
func (p *filterParser) quoted() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '\'' {
			if p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' {
				b.WriteByte('\'')
				p.pos += 2
				continue
			}
			p.pos++
			return b.String(), nil
		}
		b.WriteByte(c)
		p.pos++
	}
	return "", fmt.Errorf("unterminated string literal at position %d", start)
}

func compareInts(a, b int64, op string) bool {
	switch op {
	case "eq":
		return a == b
	case "ne":
		return a != b
	case "gt":
		return a > b
	case "ge":
		return a >= b
	case "lt":
		return a < b
	case "le":
		return a <= b
	}
	return false
}

func compareTimes(a, b time.Time, op string) bool {
	switch {
	case a.Before(b):
		return compareInts(-1, 0, op)
	case a.After(b):
		return compareInts(1, 0, op)
	}
	return compareInts(0, 0, op)
}

// anyEventType reads the rest of signInEventTypes/any(t: t eq 'value') (beta
// only: listSignIns refuses it on v1.0, whose signIn has no such property).
func (p *filterParser) anyEventType() ([]condition, error) {
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != '(' {
		return nil, fmt.Errorf("expected '(' after signInEventTypes/any at position %d", p.pos)
	}
	p.pos++
	v := p.word()
	if !strings.HasSuffix(v, ":") || len(v) < 2 {
		return nil, fmt.Errorf("expected a lambda variable and ':' at position %d", p.pos)
	}
	if got := p.word(); got != strings.TrimSuffix(v, ":") {
		return nil, fmt.Errorf("expected '%s' at position %d, found '%s'", strings.TrimSuffix(v, ":"), p.pos, got)
	}
	if op := strings.ToLower(p.word()); op != "eq" {
		return nil, fmt.Errorf("only 'eq' is supported inside any(), found '%s'", op)
	}
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != '\'' {
		return nil, fmt.Errorf("expected a string literal at position %d", p.pos)
	}
	val, err := p.quoted()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != ')' {
		return nil, fmt.Errorf("missing ')' at position %d", p.pos)
	}
	p.pos++
	return []condition{{field: "signInEventTypes", op: "any", kind: litString, str: val}}, nil
}
