package bot

import "testing"

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:3978": true, "127.0.0.1": true, "127.8.9.10:80": true, "[::1]:3978": true, "::1": true,
		"": false, ":3978": false, "0.0.0.0:3978": false, "c2bot.example.com": false, "localhost.evil.example": false,
		"127.0.0.1.nip.io": false, "10.0.0.1:3978": false, "[::]:3978": false, "evil.example:3978": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
