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

{{/*
A Go-style duration of the chart's values (`500ms`, `10s`, `2m`) in whole seconds, rounded up:
terminationGracePeriodSeconds must cover it.
*/}}
{{- define "proxy-injector.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "ms" $d -}}
{{- div (add (trimSuffix "ms" $d | int64) 999) 1000 -}}
{{- else if hasSuffix "m" $d -}}
{{- mul (trimSuffix "m" $d | int64) 60 -}}
{{- else -}}
{{- trimSuffix "s" $d | int64 -}}
{{- end -}}
{{- end -}}

{{/*
With failurePolicy Fail, a webhook that cannot answer blocks pod creation in every namespace
it sees: it needs replicas on two nodes at least, and must never review the pods it needs to
come back (its own, kube-system's, cert-manager's, Linkerd's).
*/}}
{{- define "proxy-injector.validateFailurePolicy" -}}
{{- if and (eq .Values.webhook.failurePolicy "Fail") (lt (int .Values.replicas) 2) -}}
{{- fail "webhook.failurePolicy=Fail needs replicas >= 2 (a PodDisruptionBudget and required anti-affinity are added): with one replica, every restart of the webhook blocks pod creation" -}}
{{- end -}}
{{- end -}}

{{/* The namespaces a Fail webhook must never review. */}}
{{- define "proxy-injector.namespaceSelector" -}}
{{- $sel := deepCopy .Values.webhook.namespaceSelector -}}
{{- if eq .Values.webhook.failurePolicy "Fail" -}}
{{- $names := uniq (list "kube-system" .Release.Namespace (include "proxy-injector.linkerdNamespace" .) "cert-manager") -}}
{{- $required := dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" $names -}}
{{- $_ := set $sel "matchExpressions" (append ($sel.matchExpressions | default list) $required) -}}
{{- end -}}
{{- toYaml $sel -}}
{{- end -}}

{{/* The objects a Fail webhook must never review: Linkerd's control plane and its own pods. */}}
{{- define "proxy-injector.objectSelector" -}}
{{- $sel := deepCopy .Values.webhook.objectSelector -}}
{{- if eq .Values.webhook.failurePolicy "Fail" -}}
{{- $required := dict "key" "linkerd.io/control-plane-component" "operator" "DoesNotExist" -}}
{{- $exprs := $sel.matchExpressions | default list -}}
{{- if not (has $required $exprs) -}}
{{- $_ := set $sel "matchExpressions" (append $exprs $required) -}}
{{- end -}}
{{- end -}}
{{- toYaml $sel -}}
{{- end -}}

{{/*
The serving pair of tls.mode=generate. The Secret already in the cluster (`existing`, from
`lookup`; empty under `helm template`) is reused while it has more than 30 days left, so that
an upgrade does not rotate the CA under running pods. Otherwise a new CA and certificate are
made, and the caBundle trusts the old CA too: pods that still serve the old certificate keep
being trusted until they roll (an expired CA verifies nothing, so keeping it is harmless).
A Secret without the expiry annotation (made by hand or by an older chart) is replaced.
Argument: dict "ctx" (the root context), "existing" (a Secret or an empty dict), "now" (Unix
seconds). Returns YAML, base64 values: crt, key, ca, caBundle; and notAfter (Unix seconds).
*/}}
{{- define "proxy-injector.servingPair" -}}
{{- $ctx := .ctx -}}
{{- $now := int64 .now -}}
{{- $existing := .existing | default dict -}}
{{- $data := $existing.data | default dict -}}
{{- $annotations := ($existing.metadata | default dict).annotations | default dict -}}
{{- $notAfter := int64 (index $annotations "proxy-injector/tls-not-after" | default "0") -}}
{{- $complete := and (index $data "tls.crt") (index $data "tls.key") (index $data "ca.crt") -}}
{{- if and $complete (gt $notAfter (add $now 2592000)) -}}
crt: {{ index $data "tls.crt" }}
key: {{ index $data "tls.key" }}
ca: {{ index $data "ca.crt" }}
caBundle: {{ index $data "ca.crt" }}
notAfter: {{ $notAfter | quote }}
{{- else -}}
{{- $fullname := include "proxy-injector.fullname" $ctx -}}
{{- $dns := include "proxy-injector.serviceDNS" $ctx -}}
{{- $days := int $ctx.Values.tls.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $fullname) $days -}}
{{- $cert := genSignedCert $dns nil (list $dns (printf "%s.%s" $fullname $ctx.Release.Namespace) $fullname) $days $ca -}}
{{- $bundle := $ca.Cert -}}
{{- if index $data "ca.crt" -}}
{{- $bundle = printf "%s%s" $ca.Cert (index $data "ca.crt" | b64dec) -}}
{{- end }}
crt: {{ $cert.Cert | b64enc }}
key: {{ $cert.Key | b64enc }}
ca: {{ $ca.Cert | b64enc }}
caBundle: {{ $bundle | b64enc }}
notAfter: {{ add $now (mul $days 86400) | quote }}
{{- end -}}
{{- end -}}
