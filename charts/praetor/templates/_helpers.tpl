{{/* Chart name, truncated to a DNS label. */}}
{{- define "praetor.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the operator's objects: <release>-operator unless the release is "praetor". */}}
{{- define "praetor.fullname" -}}
{{- if eq .Release.Name "praetor" }}
{{- "praetor-operator" }}
{{- else }}
{{- printf "%s-praetor-operator" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "praetor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "praetor.selectorLabels" -}}
app.kubernetes.io/name: praetor-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "praetor.labels" -}}
helm.sh/chart: {{ include "praetor.chart" . }}
{{ include "praetor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: praetor
{{- end }}

{{- define "praetor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "praetor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "praetor.webhookName" -}}
{{- printf "%s-webhook" (include "praetor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "praetor.operatorImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "praetor.agentImage" -}}
{{- printf "%s:%s" .Values.agentImage.repository (default .Chart.AppVersion .Values.agentImage.tag) }}
{{- end }}
