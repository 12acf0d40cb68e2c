#!/usr/bin/env bash
# Audit benchmark: stsguard audit and kube-score on the same generated
# manifest of N objects (StatefulSets with their Services and Secrets), each
# run RUNS times; prints the median wall time, objects per second, the
# median user CPU time and the median peak memory (max RSS, from GNU time)
# of each.
#
# Usage: bench/audit.sh [N] [RUNS]      (default 10000 objects, 5 runs)
#
# stsguard is built from this checkout into a temporary directory (bin/ may be
# shared between checkouts); STSGUARD=path measures that binary instead.
# kube-score is installed into bin/ once.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
runs=${2:-5}
KUBE_SCORE_VERSION=v1.20.0

command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
mkdir -p bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stsguard=${STSGUARD:-$work/stsguard}
if [[ -z "${STSGUARD:-}" ]]; then
  # Built as released (the Makefile's and the image's flags) and copied into
  # place as an install would: the file the Go linker has just written sits
  # in the page cache in large folios, and running it straight away maps
  # about 20 MiB more of it than running an installed copy (docs/speed.md).
  go build -trimpath -ldflags '-s -w' -o "$work/stsguard.linked" ./cmd/stsguard
  install -m 0755 "$work/stsguard.linked" "$stsguard"
fi
if [[ ! -x bin/kube-score ]]; then
  GOBIN="$PWD/bin" go install "github.com/zegl/kube-score/cmd/kube-score@${KUBE_SCORE_VERSION}"
fi
go run ./bench/gen -n "$n" > "$work/objects.yaml"
objects=$(grep -c '^kind:' "$work/objects.yaml")

# median: the median of its arguments (numbers).
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# measure NAME CMD...: RUNS runs; prints "NAME seconds objects/s user MiB".
measure() {
  local name=$1; shift
  local times=() users=() rss=()
  for _ in $(seq "$runs"); do
    # Exit status 1 means findings, for both tools; only a crash fails.
    /usr/bin/time -f '%e %U %M' -o "$work/time" "$@" > /dev/null 2>"$work/stderr" || [[ $? -le 1 ]] || { cat "$work/stderr" >&2; exit 1; }
    read -r t u m < <(tail -n 1 "$work/time")
    times+=("$t"); users+=("$u"); rss+=("$m")
  done
  local t u m
  t=$(median "${times[@]}"); u=$(median "${users[@]}"); m=$(median "${rss[@]}")
  awk -v name="$name" -v t="$t" -v u="$u" -v m="$m" -v n="$objects" \
    'BEGIN { printf "%-12s %7.2f s %10.0f objects/s %6.2f s user %8.1f MiB\n", name, t, (t > 0 ? n / t : 0), u, m / 1024 }'
}

echo "$objects objects, median of $runs runs, $(nproc) CPUs"
measure stsguard "$stsguard" audit -f "$work/objects.yaml" -o json
measure kube-score bin/kube-score score "$work/objects.yaml"
