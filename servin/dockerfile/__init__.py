"""The Dockerfile language: parser, variable substitution, instructions, ``.dockerignore``.

Pure functions over text, shared by the engine's builder (``servin.engine.build``) and the
CLI (which reads a Dockerfile to send only the context files a build needs). Nothing here
touches the filesystem except where a function says so.
"""
