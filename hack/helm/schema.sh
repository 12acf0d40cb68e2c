#!/usr/bin/env bash
# Rewrites the rule and mutation IDs in charts/stsguard/values.schema.json
# from stsguard's rule catalog (`stsguard rules`), so that Helm refuses a
# policy value naming a rule stsguard does not have. The five generated
# $defs (ruleID, mutationID, ruleOrMutationID, ruleActions, mutationModes)
# are one line each; the rest of the schema is written by hand.
# test/deploy's TestChartSchemaMatchesTheCatalog fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")/../.."
schema=charts/stsguard/values.schema.json

catalog=$(go run ./cmd/stsguard rules)
# ID KINDS ACTION DESCRIPTION; mutations have the action Mutate.
mapfile -t rules < <(awk 'NR > 1 && $3 != "Mutate" { print $1 }' <<<"$catalog")
mapfile -t mutations < <(awk 'NR > 1 && $3 == "Mutate" { print $1 }' <<<"$catalog")
(( ${#rules[@]} > 0 && ${#mutations[@]} > 0 )) || { echo "no rules or no mutations in the output of stsguard rules" >&2; exit 1; }

# enum ID...: ["a", "b"]; props REF ID...: {"a": {"$ref": "REF"}, ...}
enum() { local s="" id; for id in "$@"; do s+="${s:+, }\"$id\""; done; printf '[%s]' "$s"; }
props() { local ref=$1 s="" id; shift; for id in "$@"; do s+="${s:+, }\"$id\": {\"\$ref\": \"$ref\"}"; done; printf '{%s}' "$s"; }

line_ruleID="    \"ruleID\": {\"description\": \"The ID of a validating rule (\`stsguard rules\`); generated from the catalog by make chart.\", \"enum\": $(enum "${rules[@]}")},"
line_mutationID="    \"mutationID\": {\"description\": \"The ID of a mutation (\`stsguard rules\`, action Mutate); generated from the catalog by make chart.\", \"enum\": $(enum "${mutations[@]}")},"
line_ruleOrMutationID="    \"ruleOrMutationID\": {\"description\": \"The ID of a rule or a mutation; generated from the catalog by make chart.\", \"enum\": $(enum "${rules[@]}" "${mutations[@]}")},"
line_ruleActions="    \"ruleActions\": {\"description\": \"Per validating rule: Deny, Warn, Audit or Off; generated from the catalog by make chart.\", \"type\": \"object\", \"additionalProperties\": false, \"properties\": $(props '#/$defs/action' "${rules[@]}")},"
line_mutationModes="    \"mutationModes\": {\"description\": \"Per mutation: On or Off; generated from the catalog by make chart.\", \"type\": \"object\", \"additionalProperties\": false, \"properties\": $(props '#/$defs/mutationMode' "${mutations[@]}")},"

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
n=0
while IFS= read -r line; do
  case $line in
    '    "ruleID": '*) line=$line_ruleID; n=$((n + 1)) ;;
    '    "mutationID": '*) line=$line_mutationID; n=$((n + 1)) ;;
    '    "ruleOrMutationID": '*) line=$line_ruleOrMutationID; n=$((n + 1)) ;;
    '    "ruleActions": '*) line=$line_ruleActions; n=$((n + 1)) ;;
    '    "mutationModes": '*) line=$line_mutationModes; n=$((n + 1)) ;;
  esac
  printf '%s\n' "$line"
done <"$schema" >"$tmp"
(( n == 5 )) || { echo "$schema: expected the five generated \$defs lines, found $n" >&2; exit 1; }
cat "$tmp" >"$schema"
echo "$schema: ${#rules[@]} rules, ${#mutations[@]} mutations"
