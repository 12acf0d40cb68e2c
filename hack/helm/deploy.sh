#!/usr/bin/env bash
# Renders the manifests under deploy/ that come from the chart, with
# `helm template` (release stsguard, namespace stsguard-system) and the
# values in hack/helm/deploy-values/, into ROOT (default: the repository):
#
#   deploy/base/stsguard.yaml               everything but the TLS material (base.yaml)
#   deploy/cert-manager/certificates.yaml   the Issuers and Certificates (cert-manager.yaml)
#   deploy/self-signed/rbac.yaml            the Role and ClusterRole of --manage-certs (self-signed.yaml)
#   deploy/prometheus/prometheusrule.yaml   the alerts (prometheus.yaml)
#
# The chart is the one source of truth; the kustomize files around these
# (kustomization.yaml, namespace.yaml, the overlays' patches) are written by
# hand and test/deploy checks that every overlay renders what the chart
# renders for the same settings. The Helm-only labels (helm.sh/chart,
# app.kubernetes.io/managed-by: Helm) are left out: kubectl applies these.
#
#   hack/helm/deploy.sh [ROOT]   (make chart; TestChartDeployIsGenerated
#                                 renders into a temporary ROOT and compares)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
root=${1:-$repo}
helm=${HELM:-${KUBEBUILDER_ASSETS:-$repo/bin/k8s}/helm}
[[ -x $helm ]] || { echo "$helm missing: run make helm (hack/helm/build.sh)" >&2; exit 1; }

# render VALUES OUT [TEMPLATE]: helm template of the chart into ROOT/OUT,
# without the lines matching $drop.
drop='^ *(helm\.sh/chart: |app\.kubernetes\.io/managed-by: Helm$)'
render() {
  local values=$1 out=$2 show=()
  [[ -n ${3:-} ]] && show=(--show-only "templates/$3")
  mkdir -p "$(dirname "$root/$out")"
  {
    echo "# Generated from charts/stsguard by hack/helm/deploy.sh (make chart) with"
    echo "# hack/helm/deploy-values/$values; do not edit: change the chart and run make chart."
    "$helm" template stsguard "$repo/charts/stsguard" --namespace stsguard-system \
      --values "$here/deploy-values/$values" "${show[@]}" | grep -v -E "$drop"
  } >"$root/$out"
}

# The base's objects get their namespace from its kustomization
# (namespace: stsguard-system), not from metadata.namespace: so an overlay
# can still replace the ConfigMap stsguard-policy with a configMapGenerator
# (behavior: replace) that names no namespace, as before the chart existed.
drop_base="$drop|^  namespace: stsguard-system$"
drop=$drop_base render base.yaml deploy/base/stsguard.yaml
render cert-manager.yaml deploy/cert-manager/certificates.yaml certificates.yaml
render self-signed.yaml deploy/self-signed/rbac.yaml manage-certs-rbac.yaml
render prometheus.yaml deploy/prometheus/prometheusrule.yaml prometheusrule.yaml
