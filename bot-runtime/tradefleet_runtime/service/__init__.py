"""The long-lived bot service: control plane, gRPC API, HTTP (metrics, health, webhook)."""
