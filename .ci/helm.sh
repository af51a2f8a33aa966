#!/usr/bin/env bash
# Lints and renders the Helm chart (deploy/helm/c2bot) with helm built from
# the Go module proxy (no prebuilt download):
#
#   bash .ci/helm.sh
#
# helm is built once into $C2_TOOLS_CACHE/helm/<version> (default
# ~/.cache/c2bot-tools) and reused; the first build takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v3.21.4
cache=${C2_TOOLS_CACHE:-$HOME/.cache/c2bot-tools}
bin="$cache/helm/$version"
if [ ! -x "$bin/helm" ]; then
	echo "building helm $version into $bin" >&2
	mkdir -p "$bin"
	# helm's module is outside this module's go.mod: build it on its own.
	(cd "$bin" && GOBIN="$bin" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$version")
fi
helm() { "$bin/helm" "$@"; }

chart=deploy/helm/c2bot
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

helm lint --strict "$chart" --set database.existingSecret=c2bot-db
# Without a database the chart refuses to render.
if helm template c2bot "$chart" >"$out/none.yaml" 2>"$out/none.err"; then
	echo "helm template rendered without database.existingSecret" >&2
	exit 1
fi
grep -q "database.existingSecret is required" "$out/none.err"

helm template c2bot "$chart" \
	--set database.existingSecret=c2bot-db \
	--set 'secrets.existingSecrets={c2bot-secrets}' \
	--set certificates.existingSecret=c2bot-certs \
	--set serviceMonitor.enabled=true \
	--set-string config='tenants: [{name: contoso}]' >"$out/all.yaml"
check() {
	if ! grep -q -- "$1" "$out/all.yaml"; then
		echo "rendered chart lacks: $1" >&2
		exit 1
	fi
}
check "kind: Deployment"
check "replicas: 3"
check "kind: PodDisruptionBudget"
check "kind: ServiceMonitor"
check "kind: ConfigMap"
check "path: /readyz"
check "path: /healthz"
check "runAsNonRoot: true"
check "readOnlyRootFilesystem: true"
check "name: c2bot-db"
check "name: c2bot-secrets"
check "secretName: c2bot-certs"
# One replica: no disruption budget (it could never be met).
helm template c2bot "$chart" --set database.existingSecret=c2bot-db --set replicaCount=1 >"$out/one.yaml"
if grep -q "kind: PodDisruptionBudget" "$out/one.yaml"; then
	echo "a single replica got a PodDisruptionBudget" >&2
	exit 1
fi
echo "helm chart: lint and template ok"
