"""The registry client: the distribution v2 API over httpx (auth, TLS, mirrors, retries)."""
