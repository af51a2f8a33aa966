#!/usr/bin/env bash
# Installs Debian's Chromium for the console browser test
# (cmd/c2bot/browser_test.go):
#
#   bash .ci/browser.sh
#   C2_REQUIRE_BROWSER=1 go test ./cmd/c2bot/ -run TestConsoleInBrowser -v
#
# Does nothing when /usr/bin/chromium is already there. Needs root (or sudo)
# for apt-get.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	echo "chromium already installed: /usr/bin/chromium"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "installing chromium needs root or sudo" >&2
		exit 1
	fi
	sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends chromium

if [ ! -x /usr/bin/chromium ]; then
	echo "apt-get installed chromium but /usr/bin/chromium is missing" >&2
	exit 1
fi
echo "chromium installed: /usr/bin/chromium"
