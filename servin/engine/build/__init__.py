"""Dockerfile builds: ``engine.builds`` (``service.py``), see docs/build.md."""
