{{/* Names, labels and images shared by every template. */}}

{{- define "walletchaos.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "walletchaos.fullname" -}}
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

{{- define "walletchaos.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of one component's objects: <fullname>-<component>. Call with (list $ "wallet"). */}}
{{- define "walletchaos.component.fullname" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "walletchaos.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{/* Selector labels of one component (stable: never add to these after an install). */}}
{{- define "walletchaos.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "walletchaos.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* All standard labels of one component's objects. */}}
{{- define "walletchaos.labels" -}}
{{- $root := index . 0 -}}
{{ include "walletchaos.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: walletchaos
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ include "walletchaos.chart" $root }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* image: "<repository>:<tag>" of a component's image block, falling back to appImage field by field.
     Call with (list $ .Values.wallet.image). */}}
{{- define "walletchaos.appImage" -}}
{{- $root := index . 0 -}}
{{- $img := index . 1 -}}
{{- $repo := $img.repository | default $root.Values.appImage.repository -}}
{{- $tag := $img.tag | default $root.Values.appImage.tag -}}
{{- printf "%s:%s" $repo (toString $tag) -}}
{{- end -}}

{{- define "walletchaos.appPullPolicy" -}}
{{- $root := index . 0 -}}
{{- $img := index . 1 -}}
{{- $img.pullPolicy | default $root.Values.appImage.pullPolicy -}}
{{- end -}}

{{- define "walletchaos.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{- define "walletchaos.postgresSecret" -}}
{{- .Values.postgres.existingSecret | default (include "walletchaos.component.fullname" (list . "postgres")) -}}
{{- end -}}

{{- define "walletchaos.walletSecret" -}}
{{- .Values.wallet.existingSecret | default (include "walletchaos.component.fullname" (list . "wallet")) -}}
{{- end -}}

{{/* Host names of the Services (the toxiproxy config and the clients use them). */}}
{{- define "walletchaos.toxiproxyHost" -}}
{{- include "walletchaos.component.fullname" (list . "toxiproxy") -}}
{{- end -}}

{{- define "walletchaos.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* nodeSelector / tolerations / affinity of one component's values block. */}}
{{- define "walletchaos.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Upstream of each hop (the Service the hop ends at), by proxy name. */}}
{{- define "walletchaos.hopUpstream" -}}
{{- $root := index . 0 -}}
{{- $hop := index . 1 -}}
{{- if eq $hop "wallet_api" -}}
{{- printf "%s:%v" (include "walletchaos.component.fullname" (list $root "wallet")) $root.Values.wallet.port -}}
{{- else if eq $hop "wallet_db" -}}
{{- printf "%s:5432" (include "walletchaos.component.fullname" (list $root "postgres")) -}}
{{- else if eq $hop "gateway" -}}
{{- printf "%s:%v" (include "walletchaos.component.fullname" (list $root "gateway")) $root.Values.gateway.port -}}
{{- else -}}
{{- fail (printf "unknown hop %q (known: wallet_api, wallet_db, gateway)" $hop) -}}
{{- end -}}
{{- end -}}

{{/* host:port a client of the hop connects to: Toxiproxy's listener, or the upstream when bypassed. */}}
{{- define "walletchaos.hopAddress" -}}
{{- $root := index . 0 -}}
{{- $hop := index . 1 -}}
{{- if has $hop $root.Values.toxiproxy.bypass -}}
{{- include "walletchaos.hopUpstream" . -}}
{{- else -}}
{{- printf "%s:%v" (include "walletchaos.toxiproxyHost" $root) (index $root.Values.toxiproxy.proxies $hop) -}}
{{- end -}}
{{- end -}}

{{/* The proxied hops (not bypassed), in the order of docker/toxiproxy.json. */}}
{{- define "walletchaos.proxiedHops" -}}
{{- $hops := list -}}
{{- range $hop := list "wallet_api" "wallet_db" "gateway" -}}
{{- if not (has $hop $.Values.toxiproxy.bypass) -}}{{- $hops = append $hops $hop -}}{{- end -}}
{{- end -}}
{{- $hops | join "," -}}
{{- end -}}
