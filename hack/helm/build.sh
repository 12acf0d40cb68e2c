#!/usr/bin/env bash
# Builds helm, which the chart tests (test/deploy/chart_*_test.go) and
# `make chart` run, from the Go module proxy at the version this helper
# module pins (go.mod's tool directive), into $1 (default bin/k8s, beside
# the local cluster's kubectl). It is built only when it is missing or was
# built at another version (bin/k8s/.version-helm), so a warm bin/k8s costs
# nothing. From an empty build cache it takes a few minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../bin/k8s}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cd "$here"
helm_version=$(go list -m -f '{{.Version}}' helm.sh/helm/v4)

if [[ -x $out/helm && -f $out/.version-helm && $(cat "$out/.version-helm") == "$helm_version" ]]; then
  exit 0
fi
echo "building helm $helm_version into $out"
start=$SECONDS
pkg=helm.sh/helm/v4/internal/version
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X $pkg.version=$helm_version -X $pkg.gitTreeState=clean" \
  -o "$out/helm" helm.sh/helm/v4/cmd/helm
echo "  helm built in $((SECONDS - start)) s"
echo "$helm_version" > "$out/.version-helm"
"$out/helm" version --short
