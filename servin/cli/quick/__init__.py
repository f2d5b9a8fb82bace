"""The quick CLI front: the incident commands without click, h2 or protobuf.

``entry.main`` is the ``servin`` command. It runs the few commands it implements fully (with
only flags it understands) itself, on ``servin.client.quick``; anything else goes to the full
click CLI (``servin.cli.main``) unchanged.
"""
