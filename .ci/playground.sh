#!/usr/bin/env bash
# Installs Microsoft 365 Agents Playground into the npm prefix directory given
# as $1, for the Teams end-to-end test (cmd/c2bot/teams_e2e_test.go):
#
#   .ci/playground.sh /tmp/pg
#   C2_PLAYGROUND_DIR=/tmp/pg C2_REQUIRE_PLAYGROUND=1 go test ./cmd/c2bot/ -run TestTeamsPlayground -v
#
# Running it again with the same directory does nothing once the pinned
# version is in place.
set -euo pipefail

VERSION=0.2.28
PKG=@microsoft/m365agentsplayground

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 <install-dir>" >&2
	exit 2
fi
dir=$1
mkdir -p "$dir"

installed=$dir/node_modules/$PKG/package.json
if [ -x "$dir/node_modules/.bin/agentsplayground" ] && [ -f "$installed" ] &&
	grep -q "\"version\": *\"$VERSION\"" "$installed"; then
	echo "$PKG@$VERSION already installed in $dir"
	exit 0
fi

if ! command -v npm >/dev/null; then
	echo "$0: npm is not installed (the playground runs on Node.js)" >&2
	exit 1
fi
npm install --no-audit --no-fund --prefix "$dir" "$PKG@$VERSION"
echo "$PKG@$VERSION installed in $dir"
