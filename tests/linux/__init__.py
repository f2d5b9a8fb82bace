"""Tests of servin.engine.linux: cgroups and seccomp, against the real kernel."""
