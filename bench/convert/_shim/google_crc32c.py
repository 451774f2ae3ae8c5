"""A stand-in for ``google-crc32c`` built on the ``crc32c`` package (benchmark only).

Beam's WriteToTFRecord needs python-snappy, google-crc32c or crcmod
(``apache-beam[tfrecord]``); the project venv has ``crc32c``, equally a
hardware CRC32C. ``bench/convert/run.py`` puts this folder on PYTHONPATH for
the straightforward-Beam tasks, so every multi_processing worker sees it.
"""

from crc32c import crc32c as value

__all__ = ["value"]
