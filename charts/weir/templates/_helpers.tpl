{{/* Names: "<release>-weir" unless the release name already contains "weir". */}}
{{- define "weir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "weir.fullname" -}}
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

{{- define "weir.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels on every object. */}}
{{- define "weir.labels" -}}
helm.sh/chart: {{ include "weir.chart" . }}
{{ include "weir.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weir
{{- end }}

{{/* Immutable subset used by selectors (Deployment, Service, PDB, ServiceMonitor). */}}
{{- define "weir.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "weir.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "weir.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "weir.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Name of the ConfigMap holding the pipeline files. */}}
{{- define "weir.pipelinesConfigMap" -}}
{{- default (printf "%s-pipelines" (include "weir.fullname" .)) .Values.existingConfigMap }}
{{- end }}

{{/*
The daemon config as YAML: `config` plus what the chart decides (pipelines
directory, metrics listen address on the container port).
*/}}
{{- define "weir.daemonConfig" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg "pipelines" (list "/etc/weir/pipelines") }}
{{- $_ := set $cfg "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port))) }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Consumer groups of the pipelines in `pipelines` (group_id, else weir.<name>),
as a YAML list; used by the KEDA triggers by default.
*/}}
{{- define "weir.consumerGroups" -}}
{{- $groups := list }}
{{- range $file, $text := .Values.pipelines }}
{{- $p := fromYaml $text }}
{{- if or (hasKey $p "Error") (not $p.name) }}
{{- fail (printf "pipelines.%s: cannot read the pipeline's name (%v)" $file (get $p "Error")) }}
{{- end }}
{{- $groups = append $groups (default (printf "weir.%s" $p.name) $p.group_id) }}
{{- end }}
{{- toYaml $groups }}
{{- end }}
