"""Writing and publishing conversion outputs through Beam's FileSystems.

Writers append to *pieces* in a temporary folder beside the output (one open
piece per shard per bundle); a single finalize step then builds every final
file under a temporary name, removes older outputs of the same prefix, and
renames the new ones into place. ``PREFIX.summary.json`` is written last,
so a complete summary means a complete, consistent output set.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from featurepipe._version import __version__
from featurepipe.tfrecord import TFRecordWriter, frame_records, shard_name

__all__ = ["OutputLayout", "Piece", "PieceWriter", "copy_pieces", "publish"]

_RAW = CompressionTypes.UNCOMPRESSED
_COPY_CHUNK = 4 << 20

@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """Where every output of one conversion goes.

    Args:
        prefix: the output prefix, e.g. ``gs://bucket/out/train``.
        compression: ``"none"``, ``"gzip"`` or ``"zlib"``.
        temp_dir: the folder for pieces. Defaults to a unique sibling of the prefix.
    """

    prefix: str
    compression: str = "none"
    temp_dir: str = ""

    def __post_init__(self) -> None:
        if not self.temp_dir:
            object.__setattr__(
                self, "temp_dir", f"{self.prefix}.featurepipe-tmp-{uuid.uuid4().hex[:12]}"
            )

    @property
    def run_id(self) -> str:
        """A short id unique to this run (the temp folder's suffix)."""
        return self.temp_dir.rsplit("-", 1)[-1]

    @property
    def suffix(self) -> str:
        """The shard file suffix."""
        return {"none": ".tfrecord", "gzip": ".tfrecord.gz", "zlib": ".tfrecord.zz"}[
            self.compression
        ]

    @property
    def piece_compression(self) -> str:
        """Compression inside pieces: gzip members concatenate; zlib streams do not."""
        return "gzip" if self.compression == "gzip" else "none"

    def shard(self, index: int, num_shards: int) -> str:
        """The final name of one shard."""
        return shard_name(self.prefix, index, num_shards, self.suffix)

    def deadletter(self, index: int, num_shards: int) -> str:
        """The final name of one dead-letter file."""
        return f"{self.prefix}.deadletter-{index:05d}-of-{num_shards:05d}.jsonl"

    @property
    def schema_path(self) -> str:
        """``PREFIX.schema.json``."""
        return f"{self.prefix}.schema.json"

    @property
    def summary_path(self) -> str:
        """``PREFIX.summary.json``."""
        return f"{self.prefix}.summary.json"

    def new_piece(self, kind: str) -> str:
        """A fresh piece name in the temp folder."""
        ext = ".jsonl" if kind == "deadletter" else ".tfrecord"
        return FileSystems.join(self.temp_dir, f"{kind}-{uuid.uuid4().hex}{ext}")


@dataclasses.dataclass(frozen=True)
class Piece:
    """One temporary file written by one bundle.

    Attributes:
        path: where it is.
        shard: the shard it belongs to (``-1``: any).
        first: the sort key of its first batch (keeps shard contents ordered).
        records: records (or dead-letter lines) in it.
        nbytes: its size in bytes.
        reasons: dead letters per reason (dead-letter pieces only).
    """

    path: str
    shard: int
    first: tuple[int, ...]
    records: int
    nbytes: int
    reasons: tuple[tuple[str, int], ...] = ()


PIECE_META_SUFFIX = ".meta.json"


def write_piece_meta(piece: Piece) -> None:
    """Records a closed piece's description beside it (``PATH.meta.json``)."""
    doc = {
        "shard": piece.shard,
        "first": list(piece.first),
        "records": piece.records,
        "nbytes": piece.nbytes,
        "reasons": [list(r) for r in piece.reasons],
    }
    with FileSystems.create(piece.path + PIECE_META_SUFFIX, compression_type=_RAW) as f:
        f.write(json.dumps(doc).encode("utf-8"))


def read_piece_meta(path: str) -> Piece:
    """The :class:`Piece` that :func:`write_piece_meta` recorded for the piece at ``path``."""
    with FileSystems.open(path + PIECE_META_SUFFIX, compression_type=_RAW) as f:
        doc = json.loads(f.read().decode("utf-8"))
    return Piece(
        path,
        int(doc["shard"]),
        tuple(doc["first"]),
        int(doc["records"]),
        int(doc["nbytes"]),
        tuple((str(k), int(v)) for k, v in doc["reasons"]),
    )


class PieceWriter:
    """An open TFRecord piece; frames a whole batch of records per write call.

    Gzip pieces are single gzip members, so pieces concatenate into one valid
    gzip file; zlib output is compressed only when pieces are joined.
    """

    def __init__(self, layout: OutputLayout, shard: int, first: tuple[int, ...]) -> None:
        self.path = layout.new_piece("examples")
        self.shard = shard
        self.first = first
        self.records = 0
        self.nbytes = 0  # uncompressed stream bytes
        self._f = FileSystems.create(self.path, compression_type=_RAW)
        self._z = (
            zlib.compressobj(6, zlib.DEFLATED, 31) if layout.piece_compression == "gzip" else None
        )

    def write(self, records: Sequence[bytes]) -> None:
        """Appends records."""
        blob = frame_records(records)
        self.records += len(records)
        self.nbytes += len(blob)
        self._f.write(self._z.compress(blob) if self._z is not None else blob)

    def close(self) -> Piece:
        """Closes the piece and describes it."""
        if self._z is not None:
            self._f.write(self._z.flush())
        self._f.close()
        return Piece(self.path, self.shard, self.first, self.records, self.nbytes)


def copy_pieces(
    pieces: Sequence[Piece], dest: str, layout: OutputLayout, *, tfrecord: bool
) -> None:
    """Concatenates pieces into ``dest`` (a temp name), converting compression where needed.

    Plain and gzip pieces concatenate byte for byte (gzip members in a row are
    one valid gzip file); zlib output is compressed here as one stream.
    """
    out = FileSystems.create(dest, compression_type=_RAW)
    try:
        z = (
            zlib.compressobj(6, zlib.DEFLATED, 15)
            if tfrecord and layout.compression == "zlib"
            else None
        )
        wrote_gzip = False
        for p in pieces:
            with FileSystems.open(p.path, compression_type=_RAW) as f:
                while chunk := f.read(_COPY_CHUNK):
                    wrote_gzip = True
                    out.write(z.compress(chunk) if z is not None else chunk)
        if z is not None:
            out.write(z.flush())
        elif tfrecord and layout.compression == "gzip" and not wrote_gzip:
            TFRecordWriter(out, "gzip").close()  # an empty shard is still a valid gzip file
    finally:
        out.close()


def publish(
    layout: OutputLayout,
    moves: Iterable[tuple[str, str]],
    summary: dict[str, Any],
    schema_json: str | None,
) -> None:
    """Replaces the old outputs of ``layout.prefix`` with the new ones.

    Order: drop the old summary (the completeness marker), delete old shards
    and dead letters of this prefix, rename the new files into place, write the
    schema, and write the new summary last.
    """
    _delete([layout.summary_path])
    old = []
    for pattern in (
        f"{layout.prefix}-?????-of-?????.tfrecord*",
        f"{layout.prefix}.deadletter-?????-of-?????.jsonl",
    ):
        for m in FileSystems.match([pattern])[0].metadata_list:
            old.append(m.path)
    moves = list(moves)
    keep = {d for _, d in moves} | {s for s, _ in moves}
    _delete([p for p in old if p not in keep and ".tmp-" not in p.rsplit("/", 1)[-1]])
    if moves:
        FileSystems.rename([s for s, _ in moves], [d for _, d in moves])
    if schema_json is not None:
        write_text(layout.schema_path, schema_json)
    summary = {"format_version": 1, "featurepipe_version": __version__, **summary}
    write_text(layout.summary_path, json.dumps(summary, indent=2, sort_keys=False) + "\n")
    remove_temp(layout)


def write_text(path: str, text: str) -> None:
    """Writes a small text file atomically (temp name, then rename)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with FileSystems.create(tmp, compression_type=_RAW) as f:
        f.write(text.encode("utf-8"))
    _delete([path])
    FileSystems.rename([tmp], [path])


def remove_temp(layout: OutputLayout) -> None:
    """Deletes the temp folder (best effort)."""
    try:
        if FileSystems.exists(layout.temp_dir):
            FileSystems.delete([layout.temp_dir])
    except Exception:
        pass


def _delete(paths: Sequence[str]) -> None:
    existing = [p for p in paths if FileSystems.exists(p)]
    if existing:
        FileSystems.delete(existing)
