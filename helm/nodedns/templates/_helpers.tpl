{{- define "nodedns.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nodedns.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "nodedns.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "nodedns.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nodedns.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nodedns.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The cleanup DaemonSet's pods: not selected by the metrics Service. */}}
{{- define "nodedns.cleanupSelectorLabels" -}}
app.kubernetes.io/name: {{ include "nodedns.name" . }}-cleanup
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nodedns.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "nodedns.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "nodedns.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "nodedns.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The addresses nodedns answers on. */}}
{{- define "nodedns.listenIPs" -}}
{{- $ips := list .Values.localAddress -}}
{{- if .Values.clusterDNS.bindServiceIP -}}{{- $ips = append $ips .Values.clusterDNS.ip -}}{{- end -}}
{{- if .Values.localAddressIPv6 -}}{{- $ips = append $ips .Values.localAddressIPv6 -}}{{- end -}}
{{- if and .Values.clusterDNS.bindServiceIP .Values.clusterDNS.ipv6 -}}{{- $ips = append $ips .Values.clusterDNS.ipv6 -}}{{- end -}}
{{- join "," $ips -}}
{{- end -}}

{{/* Where the cluster domain is forwarded: the service IP, or the second
     service when nodedns answers on the service IP itself. */}}
{{- define "nodedns.clusterUpstream" -}}
{{- if .Values.clusterDNS.bindServiceIP -}}{{ .Values.clusterDNS.upstreamIP }}{{- else -}}{{ .Values.clusterDNS.ip }}{{- end -}}
{{- end -}}

{{/* Memory from the cache size: about 32 MiB for the process, plus 1.25 x
     cache.maxBytes for the entries (allocator overhead included) as the
     request, and 64 MiB + 2.25 x cache.maxBytes as the limit (a snapshot
     write briefly holds a copy of the cache). */}}
{{- define "nodedns.resources" -}}
{{- if .Values.resources -}}
{{- toYaml .Values.resources -}}
{{- else -}}
{{- $mi := div (int64 .Values.cache.maxBytes) 1048576 -}}
requests:
  cpu: 50m
  memory: {{ add 32 (div (mul $mi 5) 4) }}Mi
limits:
  memory: {{ add 64 (div (mul $mi 9) 4) }}Mi
{{- end -}}
{{- end -}}

{{/* The address /healthz and /readyz listen on when health.port is set. */}}
{{- define "nodedns.healthHost" -}}
{{- if eq .Values.health.listenAddress "localAddress" -}}
{{ .Values.localAddress }}
{{- else -}}
{{ .Values.health.listenAddress }}
{{- end -}}
{{- end }}

{{/* Where kubelet's probes connect: the health port when it has one, else
the metrics port; a host unless the endpoint is on the node's IP (kubelet's
default for hostNetwork pods) or on every address. */}}
{{- define "nodedns.probeTarget" -}}
{{- if .Values.health.port -}}
{{- if ne .Values.health.listenAddress "nodeIP" }}
host: {{ include "nodedns.healthHost" . }}
{{- end }}
port: {{ .Values.health.port }}
{{- else -}}
{{- if not (has .Values.metrics.listenAddress (list "0.0.0.0" "nodeIP")) }}
host: {{ .Values.metrics.listenAddress }}
{{- end }}
port: {{ .Values.metrics.port }}
{{- end -}}
{{- end }}
