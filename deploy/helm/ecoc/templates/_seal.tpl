{{/* The seal's settings and files, for the signing Deployment only (docs/operations.md, "The seal"). */}}

{{- define "ecoc.sealEnv" -}}
{{- $seal := .Values.seal -}}
- name: COC_SEAL_FORMAT
  value: {{ $seal.format | quote }}
- name: COC_SEAL_CERT
  value: /var/run/ecoc/seal/seal.crt
{{- if eq $seal.mode "pkcs11" }}
- name: COC_SEAL_PKCS11_MODULE
  value: {{ $seal.pkcs11.module | quote }}
- name: COC_SEAL_PKCS11_TOKEN
  value: {{ $seal.pkcs11.token | quote }}
- name: COC_SEAL_PKCS11_KEY
  value: {{ $seal.pkcs11.keyLabel | quote }}
- name: COC_SEAL_PKCS11_PIN_FILE
  value: /var/run/ecoc/seal/pin
- name: COC_SEAL_PKCS11_SESSIONS
  value: {{ $seal.pkcs11.sessions | quote }}
{{- range $key, $value := $seal.pkcs11.env }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- else }}
- name: COC_SEAL_KEY
  value: /var/run/ecoc/seal/seal.key
{{- if or $seal.file.existingSecret $seal.file.keyPassword }}
- name: COC_SEAL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default (include "ecoc.sealSecret" .) $seal.file.existingSecret }}
      key: key-password
      optional: true
{{- end }}
{{- end }}
{{- with $seal.tsa.url }}
- name: COC_TSA_URL
  value: {{ . | quote }}
{{- end }}
{{- if $seal.tsa.trustConfigMap }}
- name: COC_TSA_TRUST
  value: /etc/ecoc/tsa/tsa.pem
{{- end }}
{{- end -}}

{{- define "ecoc.sealVolumes" -}}
{{- $seal := .Values.seal -}}
{{- $own := include "ecoc.sealSecret" . -}}
- name: seal-source
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ default $own $seal.certificate.existingSecret }}
          items:
            - {key: {{ ternary $seal.certificate.key "seal.crt" (ne $seal.certificate.existingSecret "") | quote }}, path: seal.crt}
      {{- if eq $seal.mode "pkcs11" }}
      - secret:
          name: {{ default $own $seal.pkcs11.pin.existingSecret }}
          items:
            - {key: {{ ternary $seal.pkcs11.pin.key "pin" (ne $seal.pkcs11.pin.existingSecret "") | quote }}, path: pin}
      {{- else }}
      - secret:
          name: {{ default $own $seal.file.existingSecret }}
          items:
            - {key: seal.key, path: seal.key}
      {{- end }}
{{- with $seal.registryKeys.existingSecret }}
- name: seal-keys-source
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
- name: seal
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- if eq $seal.mode "pkcs11" }}
- name: hsm
  {{- toYaml $seal.pkcs11.volume | nindent 2 }}
{{- end }}
{{- if $seal.tsa.trustConfigMap }}
- name: tsa-trust
  configMap:
    name: {{ $seal.tsa.trustConfigMap }}
    items:
      - {key: tsa.pem, path: tsa.pem}
{{- end }}
{{- end -}}
