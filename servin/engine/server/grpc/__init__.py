"""The servin.v1 gRPC front door."""
