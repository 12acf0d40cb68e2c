#!/usr/bin/env bash
# Builds the local control plane that the tests, the demo and `make cluster`
# run, from Go modules only (no prebuilt downloads), into $1 (default
# bin/k8s):
#
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s_version)
#   etcd                                                              (etcd_version)
#   kwok, which plays the kubelets of simulated nodes                 (kwok_version)
#
# $2 is the Kubernetes version (default v1.36.3, the one `make test` runs).
# `make test-versions` builds the other versions it tests, each into a
# directory of its own (bin/k8s-<version>), with the same etcd and kwok:
#
#   v1.36.3   pinned in ./go.mod
#   v1.30.14  pinned in ./versions/v1.30/go.mod
#   v1.37.2   pinned in ./versions/v1.37/go.mod
#
# Each binary is built only when it is missing or was built at another
# version (<out>/.version-<name> holds the version it was built at), so a
# warm directory costs nothing and a version bump rebuilds only what changed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../bin/k8s}
k8s_version=${2:-v1.36.3}
etcd_version=v3.6.8
kwok_version=v0.8.0

# The module that pins k8s.io/kubernetes at k8s_version (with its staging
# modules replaced by their matching releases).
case $k8s_version in
  v1.36.3)  k8s_module=$here ;;
  v1.30.14) k8s_module=$here/versions/v1.30 ;;
  v1.37.2)  k8s_module=$here/versions/v1.37 ;;
  *) echo "build.sh: no module pins Kubernetes $k8s_version: use v1.36.3, v1.30.14 or v1.37.2, or add hack/envtest/versions/v1.<minor>/go.mod (see the comment in one)" >&2; exit 2 ;;
esac
pinned=$(cd "$k8s_module" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
if [[ $pinned != "$k8s_version" ]]; then
  echo "build.sh: $k8s_module/go.mod pins k8s.io/kubernetes $pinned, not $k8s_version: change one of them to match" >&2
  exit 2
fi
k8s_minor=${k8s_version#v1.}
k8s_minor=${k8s_minor%%.*}

mkdir -p "$out"
out=$(cd "$out" && pwd)

export CGO_ENABLED=0
pkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"

# built NAME VERSION: true when $out/NAME exists and was built at VERSION.
built() { [[ -x $out/$1 && -f $out/.version-$1 && $(cat "$out/.version-$1") == "$2" ]]; }
stamp() { echo "$2" > "$out/.version-$1"; }

# The Kubernetes binaries come from k8s.io/kubernetes, pinned in k8s_module
# (tool directives in its go.mod).
cd "$k8s_module"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  if built "$cmd" "$k8s_version"; then continue; fi
  echo "building $cmd $k8s_version into $out"
  start=$SECONDS
  go build -trimpath -ldflags "$k8s_ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  echo "  $cmd built in $((SECONDS - start)) s"
  stamp "$cmd" "$k8s_version"
done
# etcd is pinned in this directory's module, whichever Kubernetes version is
# built.
cd "$here"
if ! built etcd "$etcd_version"; then
  echo "building etcd $etcd_version into $out"
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  stamp etcd "$etcd_version"
fi
# kwok is built from its own module at the pinned version (its go.mod and the
# checksum database pin its dependencies), so its Kubernetes libraries never
# mix with the ones above.
if ! built kwok "$kwok_version"; then
  echo "building kwok $kwok_version into $out"
  start=$SECONDS
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
  echo "  kwok built in $((SECONDS - start)) s"
  stamp kwok "$kwok_version"
fi
# kwok's own Stages for simulated nodes and pods (node-initialize, node
# heartbeat with lease, pod-ready, pod-complete, pod-delete), as its module
# ships them, into one file that the harness gives kwok with --config.
stages="$out/kwok-stages.yaml"
if [[ ! -f $stages || $(cat "$out/.version-kwok-stages" 2>/dev/null) != "$kwok_version" ]]; then
  kwok_dir=$(cd /tmp && go mod download -json "sigs.k8s.io/kwok@$kwok_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d $kwok_dir ]] || { echo "cannot find the source of sigs.k8s.io/kwok@$kwok_version"; exit 1; }
  : > "$stages.tmp"
  for f in "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
           "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           "$kwok_dir"/kustomize/stage/pod/fast/pod-*.yaml; do
    { echo "---"; echo "# from sigs.k8s.io/kwok@$kwok_version/${f#"$kwok_dir"/}"; cat "$f"; } >> "$stages.tmp"
  done
  mv "$stages.tmp" "$stages"
  stamp kwok-stages "$kwok_version"
fi

# Versions as the binaries report them (no pipe into head: under pipefail an
# early-closing reader gives SIGPIPE, exit 141).
"$out/kube-apiserver" --version
etcd_banner=$("$out/etcd" --version)
echo "${etcd_banner%%$'\n'*}"
echo "kwok $(cat "$out/.version-kwok")"
