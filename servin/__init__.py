"""Servin: a Linux container engine with a gRPC, CRI and Docker API, a console and a CLI."""

__version__ = "0.1.0"

# The version of the servin.v1 gRPC API this code speaks.
API_VERSION = "1.0"
