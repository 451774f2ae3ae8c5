"""Generated protobuf modules for tf.Example (featurepipe's own proto package).

Never edit the ``*_pb2.py`` files by hand: regenerate them with
``scripts/gen_protos.py`` from ``protos/``.
"""
