{{/* Names and labels shared by every object of the chart. */}}

{{- define "limr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "limr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "limr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "limr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "limr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "limr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: limr
{{- end -}}

{{- define "limr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "limr.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "limr.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces watched in namespace scope: the listed ones, or the release namespace. */}}
{{- define "limr.watchNamespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- join "," .Values.watch.namespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* "true" when a watched namespace is a glob pattern (kopf's `*`, `?` or a leading `!`). */}}
{{- define "limr.watchGlobs" -}}
{{- $globs := false -}}
{{- range .Values.watch.namespaces -}}
{{- if or (contains "*" .) (contains "?" .) (hasPrefix "!" .) -}}
{{- $globs = true -}}
{{- end -}}
{{- end -}}
{{- $globs -}}
{{- end -}}

{{/* Fail early on combinations that cannot work. */}}
{{- define "limr.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) -}}
{{- fail "replicaCount > 1 needs peering.enabled: true (otherwise several operators handle the same LIMRJobs)" -}}
{{- end -}}
{{- if and .Values.watch.namespaces (eq .Values.watch.scope "cluster") -}}
{{- fail "watch.namespaces is only used with watch.scope: namespace" -}}
{{- end -}}
{{- if and .Values.tests.enabled (not .Values.metrics.service.enabled) -}}
{{- fail "tests.enabled needs metrics.service.enabled (the test pod fetches the metrics Service)" -}}
{{- end -}}
{{- end -}}
