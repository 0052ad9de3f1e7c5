{{- define "ferry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ferry.labels" -}}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ferry.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Stateless: both stores external, so replicas share no volume. */}}
{{- define "ferry.stateless" -}}
{{- if and .Values.metadata.url .Values.blobStore.url -}}true{{- end -}}
{{- end -}}

{{- define "ferry.secretName" -}}
{{- .Values.existingSecret | default (include "ferry.fullname" .) -}}
{{- end -}}

{{/* Checks that fail the render with the fix to make. */}}
{{- define "ferry.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "ferry.stateless" .)) -}}
{{- fail "replicaCount > 1 needs metadata.url (PostgreSQL) and blobStore.url (S3): replicas share no volume, only these stores" -}}
{{- end -}}
{{- if regexMatch "://[^/@]*:[^/@]*@" .Values.metadata.url -}}
{{- fail "metadata.url holds a password, which would land in a ConfigMap: put it in metadata.password or metadata.existingSecret and leave it out of the URL" -}}
{{- end -}}
{{- if and .Values.blobStore.url (not .Values.blobStore.existingSecret) (or (not .Values.blobStore.accessKey) (not .Values.blobStore.secretKey)) -}}
{{- fail "blobStore.url needs S3 credentials: blobStore.accessKey and blobStore.secretKey, or blobStore.existingSecret" -}}
{{- end -}}
{{- if and .Values.metadata.url (not .Values.metadata.password) (not .Values.metadata.existingSecret) -}}
{{- fail "metadata.url needs the PostgreSQL password: metadata.password or metadata.existingSecret" -}}
{{- end -}}
{{- if not (has .Values.antiAffinity (list "soft" "hard" "none")) -}}
{{- fail "antiAffinity: use soft, hard or none" -}}
{{- end -}}
{{- end -}}

{{/* The pod security context: OpenShift's restricted SCC picks the user. */}}
{{- define "ferry.podSecurityContext" -}}
runAsNonRoot: true
{{- if not .Values.openshift }}
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "ferry.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Environment shared by serve and gc: secrets from Secrets only. */}}
{{- define "ferry.env" -}}
- name: FERRY_SECRETS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "ferry.secretName" . }}
      key: {{ .Values.secretsKeyKey }}
{{- if .Values.blobStore.url }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.blobStore.existingSecret | default (include "ferry.fullname" .) }}
      key: {{ .Values.blobStore.accessKeyKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.blobStore.existingSecret | default (include "ferry.fullname" .) }}
      key: {{ .Values.blobStore.secretKeyKey }}
{{- end }}
{{- if .Values.trustedCA.configMap }}
- name: SSL_CERT_FILE
  value: /etc/ferry/trusted-ca/{{ .Values.trustedCA.key }}
{{- end }}
{{- end -}}

{{- define "ferry.volumeMounts" -}}
- name: data
  mountPath: /var/lib/ferry
- name: tmp
  mountPath: /tmp
{{- if .Values.metadata.url }}
- name: metadata-password
  mountPath: /etc/ferry/metadata
  readOnly: true
{{- end }}
{{- if .Values.trustedCA.configMap }}
- name: trusted-ca
  mountPath: /etc/ferry/trusted-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "ferry.volumes" -}}
- name: data
{{- if include "ferry.stateless" . }}
  # Only the generated TLS files (the CA itself is in PostgreSQL).
  emptyDir: {}
{{- else }}
  persistentVolumeClaim:
    claimName: {{ .Values.persistence.existingClaim | default (include "ferry.fullname" .) }}
{{- end }}
- name: tmp
  emptyDir: {}
{{- if .Values.metadata.url }}
- name: metadata-password
  secret:
    secretName: {{ .Values.metadata.existingSecret | default (include "ferry.fullname" .) }}
    defaultMode: 0440
    items:
      - key: {{ .Values.metadata.passwordKey }}
        path: password
{{- end }}
{{- if .Values.trustedCA.configMap }}
- name: trusted-ca
  configMap:
    name: {{ .Values.trustedCA.configMap }}
{{- end }}
{{- end -}}
