"""The quick client: gRPC over HTTP/2 and protobuf without h2, hpack, grpc or google.protobuf.

For the quick CLI front (``servin.cli.quick``), which must start in a few milliseconds:
``hpack`` (header compression), ``wire`` (``QuickChannel``: blocking h2c gRPC calls) and
``lite`` (protobuf messages from field tables checked against the generated descriptors).
"""
