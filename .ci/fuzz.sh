#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZTIME each, default 8s): the command
# parser, Slack payloads and signatures, Teams activities and tokens, the
# console API and config loading. A failing input is written under the
# package's testdata/fuzz/ and fails the run; commit it as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-8s}"
targets=(
	"./handlers FuzzParseArgs"
	"./handlers FuzzParseDuration"
	"./bot/slack FuzzSlackRequest"
	"./bot/slack FuzzVerifySignature"
	"./bot/teams FuzzActivity"
	"./bot/teams FuzzInboundToken"
	"./bot/web FuzzConsoleAPI"
	"./cmd/c2bot FuzzConfigFile"
)
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "-- $name ($pkg, $fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
done
