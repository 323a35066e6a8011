{{/* The name of every object of the release. */}}
{{- define "proxy-injector.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "proxy-injector.labels" -}}
app.kubernetes.io/name: proxy-injector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "proxy-injector.selectorLabels" -}}
app.kubernetes.io/name: proxy-injector
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Linkerd's control-plane namespace (where its ConfigMaps live). */}}
{{- define "proxy-injector.linkerdNamespace" -}}
{{- default .Release.Namespace .Values.linkerdNamespace -}}
{{- end -}}

{{- define "proxy-injector.secretName" -}}
{{- default (printf "%s-k8s-tls" (include "proxy-injector.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{/* The in-cluster DNS name the apiserver calls, the serving certificate's SAN. */}}
{{- define "proxy-injector.serviceDNS" -}}
{{- printf "%s.%s.svc" (include "proxy-injector.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* TLS values are checked against each other, as Linkerd's chart does. */}}
{{- define "proxy-injector.validateTLS" -}}
{{- $t := .Values.tls -}}
{{- if eq $t.mode "external" -}}
{{- if not $t.secretName -}}{{- fail "tls.mode=external needs tls.secretName: the kubernetes.io/tls Secret holding tls.crt and tls.key" -}}{{- end -}}
{{- if not $t.caBundle -}}{{- fail "tls.mode=external needs tls.caBundle: the PEM of the CA that signed that certificate" -}}{{- end -}}
{{- else if $t.caBundle -}}
{{- fail (printf "tls.caBundle is only used with tls.mode=external (tls.mode is %s)" $t.mode) -}}
{{- end -}}
{{- if and (ne $t.mode "certManager") $t.certManager.issuerRef.name -}}
{{- fail "tls.certManager.issuerRef is only used with tls.mode=certManager" -}}
{{- end -}}
{{- end -}}
