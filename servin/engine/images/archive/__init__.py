"""Image archives: ``save`` and ``load`` in the docker-archive format and the OCI image layout."""
