{{/* Names, labels and the small decisions every template shares. */}}

{{- define "ecoc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ecoc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "ecoc.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "ecoc.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The Deployment, Service, PDB and NetworkPolicy of one service: (dict "root" $ "service" "intake") */}}
{{- define "ecoc.serviceName" -}}
{{- printf "%s-%s" (include "ecoc.fullname" .root) .service | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ecoc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ecoc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ecoc
{{- end -}}

{{/* Selector labels of one service's pods: (dict "root" $ "service" "intake") */}}
{{- define "ecoc.selector" -}}
app.kubernetes.io/name: {{ include "ecoc.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{/* Selector of every pod of the release (peers for the NetworkPolicies) */}}
{{- define "ecoc.releaseSelector" -}}
app.kubernetes.io/name: {{ include "ecoc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ecoc.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "ecoc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ecoc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ecoc.tokensSecret" -}}
{{- default (printf "%s-tokens" (include "ecoc.fullname" .)) .Values.tokens.existingSecret -}}
{{- end -}}

{{/* The Kafka principal of one service: (dict "root" $ "service" "intake") */}}
{{- define "ecoc.kafkaUser" -}}
{{- printf "%s%s" .root.Values.kafka.userPrefix .service -}}
{{- end -}}

{{/* Where one service's SASL password lives: "secret-name key" */}}
{{- define "ecoc.kafkaPasswordRef" -}}
{{- $root := .root -}}
{{- if $root.Values.strimzi.users.enabled -}}
{{- printf "%s password" (include "ecoc.kafkaUser" .) -}}
{{- else if $root.Values.kafka.sasl.existingSecret -}}
{{- printf "%s %s" $root.Values.kafka.sasl.existingSecret .service -}}
{{- else -}}
{{- printf "%s-kafka %s" (include "ecoc.fullname" $root) .service -}}
{{- end -}}
{{- end -}}

{{- define "ecoc.mongoPasswordSecret" -}}
{{- default (printf "%s-mongo" (include "ecoc.fullname" .)) .Values.mongo.password.existingSecret -}}
{{- end -}}

{{- define "ecoc.sealSecret" -}}
{{- printf "%s-seal" (include "ecoc.fullname" .) -}}
{{- end -}}

{{/* The URL of every service inside the cluster, as COC_SERVICE_URLS takes them */}}
{{- define "ecoc.serviceUrls" -}}
{{- $urls := dict -}}
{{- range $name, $svc := .Values.services -}}
{{- $_ := set $urls $name (printf "http://%s:%v" (include "ecoc.serviceName" (dict "root" $ "service" $name)) $svc.port) -}}
{{- end -}}
{{- toJson $urls -}}
{{- end -}}

{{/* Refuse what cannot work, with one line naming the value. */}}
{{- define "ecoc.checks" -}}
{{- $known := list "intake" "validation" "render" "signing" "delivery" "archive" "status" "workspace" -}}
{{- range $name, $svc := .Values.services -}}
{{- if not (has $name $known) -}}
{{- fail (printf "services.%s: no such service (one of %s)" $name (join ", " $known)) -}}
{{- end -}}
{{- end -}}
{{- if regexMatch "^mongodb(\\+srv)?://[^/@]*:[^/@]*@" .Values.mongo.url -}}
{{- fail "mongo.url: carries a password; give the user as mongo.username and the password in mongo.password" -}}
{{- end -}}
{{- if and .Values.mongo.username (not (or .Values.mongo.password.existingSecret .Values.mongo.password.value)) -}}
{{- fail "mongo.password: mongo.username is set, so name its existingSecret or give its value" -}}
{{- end -}}
{{- if and (or .Values.strimzi.topics.enabled .Values.strimzi.users.enabled) (not .Values.strimzi.cluster) -}}
{{- fail "strimzi.cluster: name the Kafka resource the topics and users belong to" -}}
{{- end -}}
{{- if and (eq .Values.kafka.securityProtocol "SASL_SSL") (not .Values.strimzi.users.enabled) (not .Values.kafka.sasl.existingSecret) (not .Values.kafka.sasl.passwords) -}}
{{- fail "kafka.sasl: SASL_SSL needs each service's password (existingSecret, passwords, or strimzi.users)" -}}
{{- end -}}
{{- if and (eq .Values.kafka.securityProtocol "SSL") (not .Values.strimzi.users.enabled) (not .Values.kafka.clientCertSecret) -}}
{{- fail "kafka.clientCertSecret: SSL (mutual TLS) needs each service's certificate and key" -}}
{{- end -}}
{{- if and .Values.strimzi.users.enabled (eq .Values.kafka.securityProtocol "PLAINTEXT") -}}
{{- fail "kafka.securityProtocol: strimzi.users gives credentials, so use SASL_SSL (scram-sha-512) or SSL (tls)" -}}
{{- end -}}
{{- if not (or .Values.seal.certificate.existingSecret .Values.seal.certificate.value) -}}
{{- fail "seal.certificate: name its existingSecret or give its value (--set-file seal.certificate.value=seal.crt)" -}}
{{- end -}}
{{- if and (eq .Values.seal.mode "file") (not (or .Values.seal.file.existingSecret .Values.seal.file.key)) -}}
{{- fail "seal.file: mode file needs the key (existingSecret, or --set-file seal.file.key=seal.key)" -}}
{{- end -}}
{{- if eq .Values.seal.mode "pkcs11" -}}
{{- if not (and .Values.seal.pkcs11.token .Values.seal.pkcs11.keyLabel .Values.seal.pkcs11.volume) -}}
{{- fail "seal.pkcs11: mode pkcs11 needs token, keyLabel and the volume holding the module" -}}
{{- end -}}
{{- if not (or .Values.seal.pkcs11.pin.existingSecret .Values.seal.pkcs11.pin.value) -}}
{{- fail "seal.pkcs11.pin: name its existingSecret or give its value" -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.seal.format "xades-t") (not .Values.seal.tsa.url) -}}
{{- fail "seal.tsa.url: xades-t needs a timestamp authority" -}}
{{- end -}}
{{- $signing := .Values.autoscaling.signing -}}
{{- if and $signing.enabled (gt (int $signing.maxReplicas) (int .Values.kafka.topics.partitions)) -}}
{{- fail (printf "autoscaling.signing.maxReplicas %v: more than kafka.topics.partitions (%v), the extra instances would sit idle" $signing.maxReplicas .Values.kafka.topics.partitions) -}}
{{- end -}}
{{- end -}}
