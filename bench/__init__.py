"""Servin's benchmark suite: Servin side by side with crun, runc, podman, docker and skopeo.

``python -m bench [SCENARIO...] [--quick] [--out DIR]`` sets up an isolated Servin daemon and the
peers it compares against, runs each scenario alternating Servin and the peers, and writes a
table (``docs/benchmarks.md``) plus ``results.json`` in ``--out``. See docs/benchmarks.md.
"""
