{{/* Chart name (63 characters at most: a DNS label). */}}
{{- define "tradefleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: <release>-<chart>, or <release> if it holds the chart's
name already. */}}
{{- define "tradefleet.fullname" -}}
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

{{- define "tradefleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "tradefleet.labels" -}}
helm.sh/chart: {{ include "tradefleet.chart" . }}
app.kubernetes.io/part-of: tradefleet
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The operator's pod selector (stable across upgrades: never change it). */}}
{{- define "tradefleet.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tradefleet.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tradefleet.operator.labels" -}}
{{ include "tradefleet.labels" . }}
{{ include "tradefleet.operator.selectorLabels" . }}
{{- end }}

{{/* Labels of objects that are not the operator's (RBAC, monitoring, policies). */}}
{{- define "tradefleet.common.labels" -}}
{{ include "tradefleet.labels" . }}
app.kubernetes.io/name: {{ include "tradefleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tradefleet.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "tradefleet.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest. Call with (dict "image" .Values.x.image "root" $). */}}
{{- define "tradefleet.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* The namespaces the operator serves when not cluster-wide, as a JSON list. */}}
{{- define "tradefleet.watchedNamespaces" -}}
{{- if .Values.operator.watch.namespaces }}
{{- .Values.operator.watch.namespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/* The namespaces bots run in, for their NetworkPolicies, as a JSON list. */}}
{{- define "tradefleet.botNamespaces" -}}
{{- if .Values.operator.watch.allNamespaces }}
{{- if .Values.networkPolicy.botNamespaces }}
{{- .Values.networkPolicy.botNamespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- else }}
{{- include "tradefleet.watchedNamespaces" . }}
{{- end }}
{{- end }}

{{- define "tradefleet.monitoringNamespace" -}}
{{- default .Release.Namespace .Values.monitoring.namespace }}
{{- end }}
