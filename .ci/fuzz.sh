#!/usr/bin/env bash
# Runs every fuzz target briefly: the command parser, Slack payloads and
# signatures, Teams activities and tokens, the console API and config
# loading. Committed inputs under each package's testdata/fuzz/ are
# regression seeds that `go test` always runs (and fails on). New inputs
# this brief exploration finds are reported loudly and moved to
# .ci/.fuzz-findings/ (commit them as seeds once fixed) but do not fail the
# run: a random find must not block a change that did not cause it, and
# every finding so far has been fixed and kept as a seed.
# FUZZ_STRICT=1 makes a finding fail the run.
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
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "${n}x" -fuzzminimizetime 500x "$pkg"; then
		found=1
		dir="$pkg/testdata/fuzz/$name"
		mkdir -p .ci/.fuzz-findings/"$name"
		for f in $(git ls-files --others --exclude-standard "$dir"); do
			echo "FUZZ FINDING ($name): $f"; cat "$f"
			mv "$f" .ci/.fuzz-findings/"$name"/
		done
	fi
done
if [ "${found:-0}" = 1 ]; then
	echo "WARNING: fuzzing found new failing inputs (above; kept in .ci/.fuzz-findings/)."
	[ "${FUZZ_STRICT:-0}" = 1 ] && exit 1
fi
exit 0
