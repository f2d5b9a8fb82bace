"""The Docker Engine API front door: an HTTP/1.1 server (h11) and docker-shaped routes.

``http`` serves connections (streamed bodies, chunked responses, hijack), ``router`` maps
``/vX.Y/...`` paths to handlers, ``params``/``responses``/``streams`` are the helpers every
endpoint family uses, ``system`` holds the system endpoints and ``door`` binds it all for the
daemon. See docs/docker-api.md.
"""
