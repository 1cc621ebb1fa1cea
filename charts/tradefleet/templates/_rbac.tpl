{{/* What the operator does to TradingBots and to the objects it makes for each of them
(operator/tradefleet_operator/handlers.py, status.py, fleet.py's KubeApi: get, create,
merge-patch; child objects go with the bot through owner references, so no delete). */}}
{{- define "tradefleet.rbac.botRules" -}}
# kopf watches TradingBots and patches their finalizer, annotations (progress, last handled
# configuration) and status.
- apiGroups: ["tradefleet.io"]
  resources: ["tradingbots"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["tradefleet.io"]
  resources: ["tradingbots/status"]
  verbs: ["get", "patch"]
# Child objects carry blockOwnerDeletion owner references to their TradingBot.
- apiGroups: ["tradefleet.io"]
  resources: ["tradingbots/finalizers"]
  verbs: ["update"]
# Each bot's ConfigMap, api-token Secret, headless Service, journal PVC and Deployment.
- apiGroups: [""]
  resources: ["configmaps", "secrets", "services", "persistentvolumeclaims"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "patch"]
# The runtime pods' status: a runtime container that exited with a code other than 0 gives
# the bot's Failed reason (its termination message). Read only, never written.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# kopf posts Kubernetes Events about each bot.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
