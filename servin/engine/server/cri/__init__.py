"""The Kubernetes CRI front door (runtime.v1) and its streaming server (``streaming/``)."""
