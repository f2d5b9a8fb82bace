"""Front doors of the engine: servin.v1 gRPC (and later CRI and the Docker REST API)."""
