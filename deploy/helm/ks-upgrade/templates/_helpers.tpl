{{/* The release's full name, for every object of the chart. */}}
{{- define "ks-upgrade.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ks-upgrade.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ks-upgrade.labels" -}}
{{ include "ks-upgrade.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ include "ks-upgrade.role" . }}-worker
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ks-upgrade.role" -}}
{{- if not (has .Values.role (list "host" "member")) -}}
{{- fail (printf "role must be host or member, not %q" .Values.role) -}}
{{- end -}}
{{- .Values.role -}}
{{- end -}}

{{- define "ks-upgrade.taskQueue" -}}
{{- .Values.taskQueue | default (printf "ks-upgrade-%s" (include "ks-upgrade.role" .)) -}}
{{- end -}}

{{- define "ks-upgrade.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "ks-upgrade.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- /*
"true" unless Helm sees the cluster (lookup finds kube-system) and the namespace named by the
argument is not there: the generated Roles of namespaces a cluster lacks are then left out.
*/}}
{{- define "ks-upgrade.rbacNamespace" -}}
{{- if or (not (lookup "v1" "Namespace" "" "kube-system")) (lookup "v1" "Namespace" "" .) -}}
true
{{- end -}}
{{- end -}}
