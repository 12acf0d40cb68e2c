#!/usr/bin/env bash
# Builds the peer tools the comparison bench runs against, into bin/peers:
#   bin/peers/kyverno          Kyverno's admission controller (cmd/kyverno)
#   bin/peers/kubectl-kyverno  Kyverno's CLI (cmd/cli/kubectl-kyverno)
#   bin/peers/kube-score       kube-score (installed with go install)
# Kyverno's go.mod carries replace directives, so `go install ...@version`
# refuses it; the script copies the module out of the Go module cache and
# builds it as a main module. Nothing fetched here is committed: bin/ is
# gitignored. Each binary that already exists is skipped.
# Usage: hack/peers/build.sh [kyverno|kubectl-kyverno|kube-score ...]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${PEERS_BIN:-$root/bin/peers}
kyverno_version=${KYVERNO_VERSION:-v1.19.1}
kube_score_version=${KUBE_SCORE_VERSION:-v1.20.0}
mkdir -p "$out"

kyverno_src() {
  local src=$out/src/kyverno-$kyverno_version
  if [[ ! -f $src/go.mod ]]; then
    local dir
    dir=$(go mod download -json "github.com/kyverno/kyverno@$kyverno_version" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    if [[ -z $dir ]]; then
      echo "build.sh: go mod download github.com/kyverno/kyverno@$kyverno_version gave no Dir" >&2
      exit 1
    fi
    mkdir -p "$out/src"
    rm -rf "$src.tmp"
    cp -r "$dir" "$src.tmp"
    chmod -R u+w "$src.tmp"
    mv "$src.tmp" "$src"
  fi
  echo "$src"
}

build_kyverno() { # $1 binary name, $2 package
  if [[ -x $out/$1 ]]; then
    echo "build.sh: $out/$1 exists, skipped"
    return
  fi
  local src
  src=$(kyverno_src)
  echo "build.sh: building $1 from github.com/kyverno/kyverno@$kyverno_version (takes tens of minutes on 2 cores)"
  (cd "$src" && go build -trimpath -ldflags '-s -w' -o "$out/$1.tmp" "$2")
  mv "$out/$1.tmp" "$out/$1"
}

build_kube_score() {
  if [[ -x $out/kube-score ]]; then
    echo "build.sh: $out/kube-score exists, skipped"
    return
  fi
  GOBIN=$out go install "github.com/zegl/kube-score/cmd/kube-score@$kube_score_version"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(kyverno kubectl-kyverno kube-score)
for t in "${targets[@]}"; do
  case $t in
  kyverno) build_kyverno kyverno ./cmd/kyverno ;;
  kubectl-kyverno) build_kyverno kubectl-kyverno ./cmd/cli/kubectl-kyverno ;;
  kube-score) build_kube_score ;;
  *)
    echo "build.sh: unknown target $t (kyverno, kubectl-kyverno, kube-score)" >&2
    exit 2
    ;;
  esac
done
