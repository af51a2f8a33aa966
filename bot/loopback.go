package bot

import (
	"net"
	"strings"
)

// IsLoopbackHost reports whether host — a Host header or a listen address,
// name[:port], IPv6 in brackets or not — names this machine by a loopback
// name: localhost (any case), 127.0.0.0/8 or ::1. An empty host (":3978",
// listening everywhere) is not loopback.
//
// Against DNS rebinding a local server must judge the Host header, not the
// address the connection came to: a page that rebinds its own name to
// 127.0.0.1 reaches the loopback listener under that name.
func IsLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
