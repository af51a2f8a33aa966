#!/usr/bin/env bash
# Known-vulnerability check with govulncheck, offline: the Go vulnerability
# database is built from the golang.org/x/vulndb module (served by the Go
# module proxy like any module) instead of being fetched from vuln.go.dev.
# Standard-library findings depend on the toolchain, so the check runs with
# the patched Go release named in go.mod's toolchain line.
set -euo pipefail
cd "$(dirname "$0")/.."

VULNDB=golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018
GOVULNCHECK=golang.org/x/vuln/cmd/govulncheck@v1.9.0
work=${C2_VULN_DIR:-$PWD/.ci/.vuln}
mkdir -p "$work"

if [ ! -x "$work/bin/govulncheck" ]; then
	GOBIN="$work/bin" go install "$GOVULNCHECK"
fi
if [ ! -f "$work/db/index/db.json" ]; then
	src=$(go mod download -json "$VULNDB" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	(cd "$work" && go run "${VULNDB/vulndb@/vulndb/cmd/indexdb@}" -vulns "$src/data/osv" -out "$work/db.tmp")
	rm -rf "$work/db" && mv "$work/db.tmp" "$work/db"
fi
toolchain=$(sed -n 's/^toolchain //p' go.mod)
GOTOOLCHAIN=${toolchain:-local} "$work/bin/govulncheck" -db "file://$work/db" ./...
