#!/usr/bin/env bash
# Checks the shipped Prometheus alert rules with promtool, built from the Go
# module proxy (no prebuilt binary is downloaded): `promtool check rules`
# for syntax, `promtool test rules` for one case per alert.
set -euo pipefail
cd "$(dirname "$0")/.."

PROMTOOL=github.com/prometheus/prometheus/cmd/promtool@v0.316.0
work=${C2_TOOLS_DIR:-$PWD/.ci/.tools}
mkdir -p "$work"
if [ ! -x "$work/promtool" ]; then
	echo "building promtool ($PROMTOOL)"
	GOBIN="$work" GOFLAGS=-mod=mod go install "$PROMTOOL"
fi
"$work/promtool" check rules deploy/prometheus/alerts.yaml
"$work/promtool" test rules deploy/prometheus/alerts_test.yaml
