"""Volumes: named data that outlives containers (the local driver, copy-up, backups)."""
