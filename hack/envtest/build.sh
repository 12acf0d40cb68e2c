#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) and kubectl from Go modules
# into $1 (default bin/k8s), skipping binaries that are already there with the
# wanted version. Only the Go module proxy is needed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../bin/k8s}
mkdir -p "$out"
out=$(cd "$out" && pwd)

k8s_version=v1.36.3
etcd_version=v3.6.8
stamp="$out/.versions"
want="kube-apiserver=$k8s_version etcd=$etcd_version kubectl=$k8s_version"

if [[ -x $out/kube-apiserver && -x $out/etcd && -x $out/kubectl && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "envtest assets up to date in $out ($want)"
  exit 0
fi

cd "$here"
export CGO_ENABLED=0
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=36 -X $pkg.gitTreeState=clean"
echo "building kube-apiserver $k8s_version into $out"
go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
# kubectl renders deploy/ with its built-in kustomize in the tests; the
# pinned build keeps that rendering the same on every machine.
echo "building kubectl $k8s_version into $out"
go build -trimpath -ldflags "$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
echo "building etcd $etcd_version into $out"
go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
"$out/kube-apiserver" --version
"$out/kubectl" version --client
# No pipe into head here: under pipefail an early-closing reader gives SIGPIPE (exit 141).
etcd_banner=$("$out/etcd" --version)
echo "${etcd_banner%%$'\n'*}"
echo "$want" > "$stamp"
