#!/usr/bin/env bash
# Audit of N generated objects (StatefulSets with their Services and
# Secrets, bench/gen) by stsguard audit, Kyverno's CLI (kyverno apply with the
# policies of bench/peers/kyverno) and kube-score, each run RUNS times;
# prints the median wall time, objects per second, the median user CPU time
# and the median peak memory (max RSS, from GNU time) of each, and stsguard's
# speed against each.
#
# Kyverno's policies look up the StatefulSets' Services with resource.Get:
# kyverno apply gets the same objects as its context (--context-file), as
# stsguard audit reads every object of its input.
#
# Usage: bench/peers/audit.sh [N] [RUNS]      (default 10000 objects, 3 runs)
#
# kyverno apply runs KYVERNO_RUNS times (default 1): it takes about 0.12 s
# of CPU per object on a 2-core machine, tens of minutes for 10,000.
#
# stsguard is built from this checkout (STSGUARD=path measures that binary
# instead); kube-score and kubectl-kyverno are built into bin/peers by
# hack/peers/build.sh; without kubectl-kyverno its line says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000}
runs=${2:-3}
kyverno_runs=${KYVERNO_RUNS:-1}

command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stsguard=${STSGUARD:-$work/stsguard}
if [[ -z "${STSGUARD:-}" ]]; then
  # As bench/audit.sh: built as released and copied into place as an
  # install would.
  go build -trimpath -ldflags '-s -w' -o "$work/stsguard.linked" ./cmd/stsguard
  install -m 0755 "$work/stsguard.linked" "$stsguard"
fi
hack/peers/build.sh kube-score >/dev/null
go run ./bench/gen -n "$n" > "$work/objects.yaml"
objects=$(grep -c '^kind:' "$work/objects.yaml")

# The same objects as a Kyverno CLI Context: spec.resources is their list.
awk 'BEGIN { print "apiVersion: cli.kyverno.io/v1alpha1\nkind: Context\nmetadata:\n  name: objects\nspec:\n  resources:" }
  /^---/ { first = 1; next }
  NF == 0 { next }
  { if (first || NR == 1) { print "  - " $0; first = 0 } else { print "    " $0 } }' "$work/objects.yaml" > "$work/context.yaml"

median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# measure NAME RUNS CMD...: RUNS runs; prints "NAME seconds objects/s user MiB"
# and sets the globals seconds_NAME and mib_NAME.
declare -A seconds mib
measure() {
  local name=$1 n=$2; shift 2
  local times=() users=() rss=()
  for _ in $(seq "$n"); do
    # Exit status 1 means findings, for each tool; only a crash fails.
    /usr/bin/time -f '%e %U %M' -o "$work/time" "$@" > "$work/stdout" 2>"$work/stderr" || [[ $? -le 1 ]] || { tail -n 20 "$work/stderr" >&2; exit 1; }
    read -r t u m < <(tail -n 1 "$work/time")
    times+=("$t"); users+=("$u"); rss+=("$m")
  done
  local t u m
  t=$(median "${times[@]}"); u=$(median "${users[@]}"); m=$(median "${rss[@]}")
  seconds[$name]=$t; mib[$name]=$(awk -v m="$m" 'BEGIN { printf "%.1f", m / 1024 }')
  awk -v name="$name" -v t="$t" -v u="$u" -v m="$m" -v n="$objects" \
    'BEGIN { printf "| %s | %.2f s | %.0f | %.2f s | %.1f MiB |\n", name, t, (t > 0 ? n / t : 0), u, m / 1024 }'
}

echo "## make bench-peers: audit"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $objects objects; median of $runs runs ($kyverno_runs of kyverno apply); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg) before."
echo
echo "| tool | time | objects/s | user CPU | peak memory |"
echo "| --- | --- | --- | --- | --- |"
measure "stsguard audit" "$runs" "$stsguard" audit -f "$work/objects.yaml" -o json
measure "kube-score" "$runs" bin/peers/kube-score score "$work/objects.yaml"
if [[ -x bin/peers/kubectl-kyverno ]]; then
  measure "kyverno apply" "$kyverno_runs" bin/peers/kubectl-kyverno apply bench/peers/kyverno --resource "$work/objects.yaml" \
    --context-file "$work/context.yaml" --remove-color
else
  echo "| kyverno apply | not run: no bin/peers/kubectl-kyverno (hack/peers/build.sh kubectl-kyverno) | | | |"
fi
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after."
echo
awk -v s="${seconds[stsguard audit]}" -v k="${seconds[kube-score]}" -v ms="${mib[stsguard audit]}" -v mk="${mib[kube-score]}" \
  'BEGIN { printf "stsguard audit against kube-score: %.1f× its speed, %.2f× its peak memory.\n", k / s, ms / mk }'
if [[ -n "${seconds[kyverno apply]:-}" ]]; then
  awk -v s="${seconds[stsguard audit]}" -v k="${seconds[kyverno apply]}" -v ms="${mib[stsguard audit]}" -v mk="${mib[kyverno apply]}" \
    'BEGIN { r = k / s; printf "stsguard audit against kyverno apply: %.1f× its speed (target 5×: %s), %.2f× its peak memory.\n", r, (r >= 5 ? "met" : "**missed**"), ms / mk }'
  echo "kyverno apply's summary: $(grep -m1 -E '^pass:' "$work/stdout" || tail -n 3 "$work/stdout" | tr '\n' ' ')"
fi
