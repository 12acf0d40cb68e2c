#!/usr/bin/env bash
# make test-versions: runs the end-to-end tests (test/e2e) and the envtest
# integration tests (test/integration) against each Kubernetes version given
# (default: the oldest and the newest the README names; `make test` runs
# every test against v1.36.3). Each version's kube-apiserver,
# kube-controller-manager, kube-scheduler and kubectl are built from Go
# modules into bin/k8s-<version> by hack/envtest/build.sh (with etcd and
# kwok), each binary only when it is missing, so a warm run builds nothing.
#
# Every version is tested even when one fails; the exit status is non-zero
# when any failed, and the last lines say which.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(v1.30.14 v1.37.2)

# The feature gates each version runs with (kube-apiserver,
# kube-controller-manager, kube-scheduler; see harness.FeatureGatesEnv):
# the alpha Recreate update strategy of StatefulSets, new in 1.37, that the
# e2e tests check stsguard against.
declare -A feature_gates=(
  [v1.37.2]=StatefulSetRecreateStrategy=true
)

go=${GO:-go}
summary=()
failed=0
for v in "${versions[@]}"; do
  assets=$PWD/bin/k8s-$v
  echo "=== Kubernetes $v: building into $assets (what is missing)"
  start=$SECONDS
  if ! ./hack/envtest/build.sh "$assets" "$v"; then
    summary+=("Kubernetes $v: FAIL (building it failed)")
    failed=1
    continue
  fi
  built=$((SECONDS - start))
  gates=${feature_gates[$v]:-}
  echo "=== Kubernetes $v: go test ./test/e2e/ ./test/integration/${gates:+ (feature gates $gates)}"
  start=$SECONDS
  # KUBECTL too, so that a KUBECTL of the caller's cannot stand in for the
  # version's kubectl.
  if KUBEBUILDER_ASSETS=$assets KUBECTL=$assets/kubectl STSGUARD_TEST_FEATURE_GATES=$gates \
      "$go" test -count=1 -p 1 ./test/e2e/ ./test/integration/; then
    result=ok
  else
    result=FAIL
    failed=1
  fi
  summary+=("Kubernetes $v: $result (build $built s, tests $((SECONDS - start)) s)")
done
printf '%s\n' "${summary[@]}"
exit $failed
