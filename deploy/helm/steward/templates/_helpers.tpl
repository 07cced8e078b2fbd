{{/* The chart's name, or nameOverride. */}}
{{- define "steward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, used for every resource: fullnameOverride, else the release
name when it already holds the chart's name, else "<release>-<chart>". At most 63
characters, less the longest suffix ("-worker") the templates add.
*/}}
{{- define "steward.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 56 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "steward-0.1.0", for the helm.sh/chart label. */}}
{{- define "steward.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "steward.labels" -}}
helm.sh/chart: {{ include "steward.chart" . }}
{{ include "steward.selectorLabels" . }}
app.kubernetes.io/version: {{ include "steward.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the release's pods, API and workers alike. */}}
{{- define "steward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "steward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's resources; called with (dict "root" $ "component" "api"). */}}
{{- define "steward.componentLabels" -}}
{{ include "steward.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels that select one component's pods; called like steward.componentLabels. */}}
{{- define "steward.componentSelectorLabels" -}}
{{ include "steward.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "steward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "steward.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "steward.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "steward.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "steward.imageTag" .) }}
{{- end }}

{{/*
A setting of `config` as the string a ConfigMap or env var holds. Whole numbers arrive
from YAML as float64, which would print as 1e+06; they are printed as integers.
*/}}
{{- define "steward.envValue" -}}
{{- if kindIs "float64" . }}
{{- int64 . | toString }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* The API port: config.PORT, else Steward's default. */}}
{{- define "steward.port" -}}
{{- include "steward.envValue" (index .Values.config "PORT" | default 8080) }}
{{- end }}

{{/*
A whole-number setting of a component, in seconds: its own settings (worker.config) over
`config`, over Steward's default. Called with (dict "root" $ "overrides" CONFIG "name"
VARIABLE "default" N).
*/}}
{{- define "steward.secondsSetting" -}}
{{- $value := .default }}
{{- if hasKey .root.Values.config .name }}
{{- $value = index .root.Values.config .name }}
{{- end }}
{{- if hasKey .overrides .name }}
{{- $value = index .overrides .name }}
{{- end }}
{{- include "steward.envValue" $value | int }}
{{- end }}

{{/*
terminationGracePeriodSeconds of a pod. On SIGTERM Steward turns unready, keeps serving
for STEWARD_SHUTDOWN_DELAY_SECONDS (so endpoints drop the pod first), then gives
in-flight requests and jobs STEWARD_SHUTDOWN_TIMEOUT_SECONDS; shutdown.marginSeconds
more, so Kubernetes' SIGKILL never comes before Steward's own deadline. Called with
(dict "root" $ "overrides" CONFIG), CONFIG being the component's own settings
(worker.config) or empty.
*/}}
{{- define "steward.terminationGracePeriodSeconds" -}}
{{- $delay := include "steward.secondsSetting" (dict "root" .root "overrides" .overrides "name" "STEWARD_SHUTDOWN_DELAY_SECONDS" "default" 0) | int }}
{{- $timeout := include "steward.secondsSetting" (dict "root" .root "overrides" .overrides "name" "STEWARD_SHUTDOWN_TIMEOUT_SECONDS" "default" 25) | int }}
{{- add $delay $timeout (int .root.Values.shutdown.marginSeconds) }}
{{- end }}

{{/*
The job executor's JetStream names and limits as config sets them (Steward's defaults
otherwise), as YAML for fromYaml.
*/}}
{{- define "steward.jobs" -}}
{{- $config := .Values.config }}
stream: {{ index $config "STEWARD_JOBS_STREAM" | default "AGENT_EXECUTION" | quote }}
subjectPrefix: {{ index $config "STEWARD_JOBS_SUBJECT_PREFIX" | default "agent" | quote }}
consumer: {{ index $config "STEWARD_JOBS_CONSUMER" | default "agent-executor-workers" | quote }}
ackWaitSeconds: {{ include "steward.envValue" (index $config "STEWARD_JOBS_ACK_WAIT_S" | default 300) }}
maxDeliver: {{ include "steward.envValue" (index $config "STEWARD_JOBS_MAX_DELIVER" | default 3) }}
{{- end }}

{{/* One env entry read from a Secret; called with (dict "env" NAME "ref" {name, key, optional}). */}}
{{- define "steward.secretEnvVar" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name | quote }}
      key: {{ required (printf "secrets: %s needs a key" .env) .ref.key | quote }}
      {{- if index .ref "optional" }}
      optional: true
      {{- end }}
{{- end }}

{{/* DATABASE_URL, for a Steward container or the migrations. */}}
{{- define "steward.databaseEnv" -}}
{{- $ref := .Values.secrets.databaseUrl }}
{{- $_ := required "secrets.databaseUrl.name is required: the Secret holding DATABASE_URL" $ref.name }}
{{- include "steward.secretEnvVar" (dict "env" "DATABASE_URL" "ref" $ref) }}
{{- end }}

{{/* Every variable Steward reads from Secrets. */}}
{{- define "steward.secretEnv" -}}
{{- $secrets := .Values.secrets }}
{{- $_ := required "secrets.encryptionKey.name is required: the Secret holding STEWARD_ENCRYPTION_KEY" $secrets.encryptionKey.name }}
{{- include "steward.databaseEnv" . }}
{{ include "steward.secretEnvVar" (dict "env" "STEWARD_ENCRYPTION_KEY" "ref" $secrets.encryptionKey) }}
{{- if $secrets.encryptionPreviousKeys.name }}
{{ include "steward.secretEnvVar" (dict "env" "STEWARD_ENCRYPTION_PREVIOUS_KEYS" "ref" $secrets.encryptionPreviousKeys) }}
{{- end }}
{{- if $secrets.redisUrl.name }}
{{ include "steward.secretEnvVar" (dict "env" "REDIS_URL" "ref" $secrets.redisUrl) }}
{{- end }}
{{- if $secrets.natsUrl.name }}
{{ include "steward.secretEnvVar" (dict "env" "NATS_URL" "ref" $secrets.natsUrl) }}
{{- end }}
{{- if $secrets.natsAccountSeed.name }}
{{ include "steward.secretEnvVar" (dict "env" "STEWARD_NATS_ACCOUNT_SEED" "ref" $secrets.natsAccountSeed) }}
{{- end }}
{{- range $secrets.extra }}
{{ include "steward.secretEnvVar" (dict "env" .env "ref" .) }}
{{- end }}
{{- end }}

{{/* The emptyDirs behind the writable paths of a read-only root filesystem. */}}
{{- define "steward.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.writableVolumes.tmpSizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.writableVolumes.dataSizeLimit }}
{{- end }}

{{- define "steward.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /app/.steward
{{- end }}

{{/* Pod annotations that roll the pods when the ConfigMap changes. */}}
{{- define "steward.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
