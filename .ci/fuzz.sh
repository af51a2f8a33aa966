#!/usr/bin/env bash
# Runs every fuzz target briefly: the command parser, Slack payloads and
# signatures, Teams activities and tokens, the console API and config
# loading. A failing input is written under the package's testdata/fuzz/ and
# fails the run; commit it as a regression seed.
#
# Budgets are counts of executions (-fuzztime Nx), sized to a few seconds
# each on two cores, not durations: with a duration, Go's fuzzing
# coordinator can fail a target with a bare "context deadline exceeded" at
# the deadline while a worker is still busy (golang/go#75804, fixed in
# go1.27). New interesting inputs are minimised for at most 500 executions
# (the default, a minute each, would eat the budget). FUZZ_SCALE multiplies
# every count (FUZZ_SCALE=10 for a longer local run).
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${FUZZ_SCALE:-1}"
targets=(
	"./handlers FuzzParseArgs 20000"
	"./handlers FuzzParseDuration 20000"
	"./bot/slack FuzzSlackRequest 15000"
	"./bot/slack FuzzVerifySignature 50000"
	"./bot/teams FuzzActivity 40000"
	"./bot/teams FuzzInboundToken 40000"
	"./bot/web FuzzConsoleAPI 50000"
	"./cmd/c2bot FuzzConfigFile 5000"
)
for t in "${targets[@]}"; do
	read -r pkg name count <<<"$t"
	n=$((count * scale))
	echo "-- $name ($pkg, ${n} executions)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "${n}x" -fuzzminimizetime 500x "$pkg"
done
