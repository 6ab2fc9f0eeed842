{{/*
Names, labels and shared pod pieces. Resource names are truncated to 63 characters
(DNS-1123 label limit) because some fields (labels, Service names) must fit in one.
*/}}

{{- define "ragline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ragline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Component names leave room for their suffixes ("-operator-metrics" is the longest). */}}
{{- define "ragline.api.fullname" -}}
{{- printf "%s-api" (include "ragline.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{- define "ragline.operator.fullname" -}}
{{- printf "%s-operator" (include "ragline.fullname" . | trunc 46 | trimSuffix "-") }}
{{- end }}

{{/* Cluster-scoped objects are shared by all namespaces: the release namespace keeps
two releases of the same name apart. */}}
{{- define "ragline.operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "ragline.operator.fullname" .) }}
{{- end }}

{{- define "ragline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "ragline.labels" -}}
helm.sh/chart: {{ include "ragline.chart" . }}
app.kubernetes.io/name: {{ include "ragline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ragline
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels: immutable in a Deployment, so nothing version-dependent. */}}
{{- define "ragline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ragline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ragline.api.selectorLabels" -}}
{{ include "ragline.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "ragline.api.labels" -}}
{{ include "ragline.labels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "ragline.operator.selectorLabels" -}}
{{ include "ragline.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "ragline.operator.labels" -}}
{{ include "ragline.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "ragline.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "ragline.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- required "api.serviceAccount.name is required when api.serviceAccount.create is false" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ragline.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "ragline.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ragline.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The ConfigMap the operator writes (operator/ragoperator) and the API reads. Its name is
fixed by that contract, so one release per namespace.
*/}}
{{- define "ragline.routingConfigMap" -}}
ragline-routing
{{- end }}

{{/*
The Secret with the Postgres DSN and the Redis URL: an existing one, or the one this chart
creates. Exactly one of the two must be chosen; fails the render with a message otherwise.
*/}}
{{- define "ragline.secretName" -}}
{{- $s := .Values.secrets }}
{{- if and $s.create $s.existingSecret }}
{{- fail "secrets: set either secrets.existingSecret or secrets.create=true, not both" }}
{{- else if $s.create }}
{{- $_ := required "secrets.databaseUrl is required when secrets.create=true (a Postgres DSN, pgvector required)" $s.databaseUrl }}
{{- $_ := required "secrets.redisUrl is required when secrets.create=true (a Redis URL)" $s.redisUrl }}
{{- include "ragline.fullname" . }}
{{- else }}
{{- required "ragline needs a Postgres DSN and a Redis URL: set secrets.existingSecret to a Secret with keys databaseUrl and redisUrl, or set secrets.create=true with secrets.databaseUrl and secrets.redisUrl" $s.existingSecret }}
{{- end }}
{{- end }}

{{/* Environment shared by the API and the operator. */}}
{{- define "ragline.commonEnv" -}}
- name: RAGLINE_ENV
  value: {{ .Values.environment | quote }}
- name: RAGLINE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: RAGLINE_LOG_JSON
  value: "true"
- name: RAGLINE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "ragline.secretName" . }}
      key: {{ .Values.secrets.databaseUrlKey }}
- name: RAGLINE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "ragline.secretName" . }}
      key: {{ .Values.secrets.redisUrlKey }}
{{- end }}

{{/*
OpenTelemetry: the standard OTEL_* variables the SDK reads; nothing when disabled.
Call with (dict "ctx" $ "service" "ragline-api").
*/}}
{{- define "ragline.otelEnv" -}}
{{- $otel := .ctx.Values.otel }}
{{- if $otel.enabled }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ required "otel.endpoint is required when otel.enabled (e.g. http://tempo-distributor.monitoring:4317)" $otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $otel.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $otel.samplingRatio | toString | quote }}
{{- $attrs := list "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" (printf "service.version=%s" .ctx.Chart.AppVersion) }}
{{- range $k, $v := $otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security Standard, for both pods. */}}
{{- define "ragline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "ragline.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Namespaces the operator watches when not cluster-wide: the list, or the release
namespace. Rendered as a JSON list so callers can fromJsonArray it.
*/}}
{{- define "ragline.operator.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces }}
{{- .Values.operator.watchNamespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/*
What the operator does in each namespace it watches (operator/ragoperator/handlers.py),
verb by verb; see operator-rbac.yaml.
*/}}
{{- define "ragline.operator.reconcileRules" -}}
# The custom resources: kopf lists and watches them and patches its finalizer and
# annotations; the routing ConfigMap is rendered from a list of them.
- apiGroups: ["ragline.dev"]
  resources: ["ragindexes", "inferencepools", "providerbudgets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["ragline.dev"]
  resources: ["ragindexes/status", "inferencepools/status", "providerbudgets/status"]
  verbs: ["patch"]
# Children carry owner references with blockOwnerDeletion, which needs update on the
# owner's finalizers where the OwnerReferencesPermissionEnforcement admission plugin runs.
- apiGroups: ["ragline.dev"]
  resources: ["ragindexes/finalizers", "inferencepools/finalizers", "providerbudgets/finalizers"]
  verbs: ["update"]
# Children are server-side applied (a first apply is a create). A pool's self-hosted
# workload is deleted when its spec drops `deployment`; its Deployment is read for status.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["create", "patch", "delete"]
# Index-build Jobs are named after their HNSW parameters and read for their outcome;
# finished ones expire by ttlSecondsAfterFinished, or with their RagIndex.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "patch"]
# The routing ConfigMap, server-side applied. create cannot be limited by name.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: [{{ include "ragline.routingConfigMap" . | quote }}]
  verbs: ["get", "patch"]
# The database DSN a RagIndex names (spec.database.secretRef): read one by name, never
# list, watch or write.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
