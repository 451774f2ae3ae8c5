"""featurepipe's exception tree.

Every error about data says where the data is: the file, the record (or row)
index and, for TFRecord files, the byte offset at which the damaged record
starts (in the decompressed stream for compressed files), plus a short
machine-readable ``reason``. No payload bytes are ever copied into a message.

```
FeaturepipeError
├── ConfigError (also ValueError)       bad arguments, options, specs or schema JSON
└── DataError                           the data itself is wrong
    ├── CorruptRecordError              TFRecord framing: CRC, truncation, trailing bytes,
    │   │                               bad compressed stream
    │   └── RecordTooLargeError         a length field beyond the bytes left or max_record_bytes
    ├── CorruptionBudgetError           on_corrupt="skip" skipped more than its budget
    ├── ExampleDecodeError              a record's payload is not a valid tf.Example
    └── SchemaMismatchError             a value does not fit the schema
```
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CorruptRecordError",
    "CorruptionBudgetError",
    "DataError",
    "ExampleDecodeError",
    "FeaturepipeError",
    "RecordTooLargeError",
    "SchemaMismatchError",
]


class FeaturepipeError(Exception):
    """Base class of every error featurepipe raises on purpose."""


class ConfigError(FeaturepipeError, ValueError):
    """An argument, option, spec or schema is invalid (a usage error, exit status 2)."""


class DataError(FeaturepipeError):
    """The data is damaged or does not fit what was asked (exit status 1).

    Attributes:
        path: the file, or ``None`` for an in-memory source.
        record: the 0-based index of the record (or row) at fault, or ``None``.
        offset: the byte offset where the damaged record starts, or ``None``.
            For compressed files it is an offset in the decompressed stream.
        reason: a short code such as ``"data_crc_mismatch"``.
        detail: the human part of the message.
    """

    def __init__(
        self,
        detail: str,
        *,
        path: str | None = None,
        record: int | None = None,
        offset: int | None = None,
        reason: str = "data_error",
    ) -> None:
        self.detail = detail
        self.path = path
        self.record = record
        self.offset = offset
        self.reason = reason
        super().__init__(self._format())

    def _format(self) -> str:
        where = [f"{self.path if self.path is not None else '<stream>'}"]
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{', '.join(where)}: {self.reason}: {self.detail}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructor: make the exception picklable (Beam workers
        # and multiprocessing send exceptions across process boundaries).
        return (
            _rebuild,
            (type(self), self.detail, self.path, self.record, self.offset, self.reason),
        )


def _rebuild(
    cls: type[DataError],
    detail: str,
    path: str | None,
    record: int | None,
    offset: int | None,
    reason: str,
) -> DataError:
    return cls(detail, path=path, record=record, offset=offset, reason=reason)


class CorruptRecordError(DataError):
    """A TFRecord file is damaged: bad CRC, truncated, trailing bytes, bad stream."""


class RecordTooLargeError(CorruptRecordError):
    """A record's length field exceeds the bytes left in the file or ``max_record_bytes``."""


class CorruptionBudgetError(DataError):
    """``on_corrupt="skip"`` met more damaged records than ``max_corrupt`` allows."""


class ExampleDecodeError(DataError):
    """A record's payload is not a valid serialized ``tf.Example``."""


class SchemaMismatchError(DataError):
    """A value does not fit the schema (wrong kind, wrong number of values, missing)."""
