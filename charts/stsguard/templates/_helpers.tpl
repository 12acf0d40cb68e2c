{{/*
The chart name, or nameOverride.
*/}}
{{- define "stsguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object: fullnameOverride, else the release name when it
contains the chart name (release stsguard: stsguard), else
<release>-<chart>. Truncated so that <fullname>-manage-certs and
<fullname>-serving-cert stay valid names.
*/}}
{{- define "stsguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := include "stsguard.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "stsguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "stsguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: stsguard
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The labels that select the webhook's pods (Deployment, Services,
PodDisruptionBudget, anti-affinity). They are those of deploy/ before the
chart existed, so that `kubectl apply -k` upgrades an existing install
(a Deployment's selector is immutable): one release per namespace.
*/}}
{{- define "stsguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stsguard.name" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{/*
The webhook Service, the names its serving certificate is for, and the
Secret that holds that certificate.
*/}}
{{- define "stsguard.serviceName" -}}
{{ include "stsguard.fullname" . }}
{{- end }}

{{- define "stsguard.dnsNames" -}}
- {{ include "stsguard.serviceName" . }}.{{ .Release.Namespace }}.svc
- {{ include "stsguard.serviceName" . }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{- define "stsguard.certSecretName" -}}
{{- if eq .Values.certificates.mode "secret" }}
{{- required "certificates.secret.name is required with certificates.mode secret: the name of an existing kubernetes.io/tls Secret in the release namespace" .Values.certificates.secret.name }}
{{- else }}
{{- include "stsguard.fullname" . }}-serving-cert
{{- end }}
{{- end }}

{{/*
The ServiceAccount stsguard runs as; the webhooks' matchConditions keep its
own writes away from stsguard.
*/}}
{{- define "stsguard.serviceAccountName" -}}
{{ include "stsguard.fullname" . }}
{{- end }}

{{- define "stsguard.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "stsguard.serviceAccountName" . }}
{{- end }}

{{/*
The image: repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "stsguard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Fails on combinations of values the schema cannot express with a message
that says what to change.
*/}}
{{- define "stsguard.validate" -}}
{{- $mode := .Values.certificates.mode }}
{{- if and (ne $mode "secret") .Values.certificates.secret.name }}
{{- fail (printf "certificates.secret.name is set but certificates.mode is %q: set certificates.mode=secret to use an existing Secret" $mode) }}
{{- end }}
{{- if and (ne $mode "cert-manager") .Values.certificates.certManager.issuerRef }}
{{- fail (printf "certificates.certManager.issuerRef is set but certificates.mode is %q: set certificates.mode=cert-manager to have cert-manager issue the certificate" $mode) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (and .Values.metrics.enabled .Values.metrics.service.enabled)) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled and metrics.service.enabled: the ServiceMonitor scrapes the metrics Service" }}
{{- end }}
{{- end }}

{{/*
What every webhook of both configurations shares: the namespaces never
sent to stsguard (kube-system, the release namespace, and
webhooks.excludedNamespaces).
*/}}
{{- define "stsguard.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ concat (list "kube-system" .Release.Namespace) .Values.webhooks.excludedNamespaces | uniq | toJson | replace "\",\"" "\", \"" }}
{{- end }}

{{/*
The name of a webhook of kind ("statefulsets", "services") and phase
("mutate", "validate"): <kind>.<phase>.stsguard.io judges CREATEs (and
Service DELETEs), <kind>-update.<phase>.stsguard.io the UPDATEs, which have
the changes-what-stsguard-judges matchCondition.
*/}}
{{- define "stsguard.webhookName" -}}
{{ .kind }}{{ if eq .op "UPDATE" }}-update{{ end }}.{{ .phase }}.stsguard.io
{{- end }}

{{/*
matchCondition that keeps stsguard's own ServiceAccount out of the webhooks
of the kind it writes: Secrets.
*/}}
{{- define "stsguard.excludeSelf" -}}
- name: exclude-stsguard-serviceaccount
  expression: request.userInfo.username != '{{ include "stsguard.serviceAccountUser" . }}'
{{- end }}

{{/*
matchCondition that keeps away the UPDATEs that change nothing stsguard
judges, so that the apiserver does not call stsguard for them: a label or an
annotation added by kubectl, Argo CD or cert-manager. Its argument names
what stsguard judges: "spec" (StatefulSets, their scale subresource,
Services) or "data" (Secrets: data and type). The stsguard.io/ annotations
(exempt, exempt-reason, canary, recreate-of) are judged on every kind.

Why nothing is let through: on an UPDATE every rule judges the stored
object too, against the same cluster, and a problem the stored object has
is ratcheted to a warning. When neither what the rules read nor stsguard's
annotations change, the two judgements are the same, so such an UPDATE
could get warnings at most, never a denial or a patch. (A literal password
an older stsguard left in kubectl's last-applied annotation is taken out at
the next judged request instead.)
*/}}
{{- define "stsguard.judgedUpdate" -}}
- name: changes-what-stsguard-judges
  expression: >-
    request.operation != 'UPDATE' ||
  {{- if eq . "data" }}
    has(object.data) != has(oldObject.data) ||
    (has(object.data) && object.data != oldObject.data) ||
    has(object.type) != has(oldObject.type) ||
    (has(object.type) && object.type != oldObject.type) ||
  {{- else }}
    object.spec != oldObject.spec ||
  {{- end }}
    !((!has(object.metadata.annotations) ||
    object.metadata.annotations.all(k, !k.startsWith('stsguard.io/') ||
    (has(oldObject.metadata.annotations) && k in oldObject.metadata.annotations &&
    oldObject.metadata.annotations[k] == object.metadata.annotations[k]))) &&
    (!has(oldObject.metadata.annotations) ||
    oldObject.metadata.annotations.all(k, !k.startsWith('stsguard.io/') ||
    (has(object.metadata.annotations) && k in object.metadata.annotations))))
{{- end }}

{{/*
clientConfig of the webhook at path (dict "root" . "path" "/...").
*/}}
{{- define "stsguard.clientConfig" -}}
clientConfig:
  service:
    name: {{ include "stsguard.serviceName" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- if and (eq .root.Values.certificates.mode "secret") .root.Values.certificates.secret.caBundle }}
  caBundle: {{ .root.Values.certificates.secret.caBundle | b64enc }}
  {{- end }}
{{- end }}

{{/*
Annotations of both webhook configurations: with cert-manager, its
cainjector copies ca.crt of the serving Certificate's Secret into every
webhook's caBundle, and again after each renewal.
*/}}
{{- define "stsguard.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "stsguard.fullname" . }}-serving-cert
{{- end }}
{{- end }}
