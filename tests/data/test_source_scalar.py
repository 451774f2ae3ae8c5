"""featurepipe.data.RecordSource[i]: the scalar path gives what read([i]) gives, errors included."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from featurepipe.data import RecordSource
from featurepipe.errors import CorruptRecordError
from featurepipe.tfrecord import write_records


def _records(n: int, base: int = 0) -> list[bytes]:
    return [f"record-{base + i}".encode() * (1 + i % 3) for i in range(n)]


def _error(call: object) -> tuple[object, ...]:
    with pytest.raises(CorruptRecordError) as err:
        call()  # type: ignore[operator]
    e = err.value
    return (type(e), str(e), e.path, e.record, e.offset, e.reason)


def test_scalar_reads_equal_read(tmp_path: Path) -> None:
    write_records(str(tmp_path / "a.tfrecord"), _records(5))
    write_records(str(tmp_path / "b.tfrecord"), [])
    write_records(str(tmp_path / "c.tfrecord"), _records(4, base=5))
    source = RecordSource(str(tmp_path / "*.tfrecord"))
    want = _records(5) + _records(4, base=5)
    assert [source[i] for i in range(9)] == want == source.read(list(range(9)))
    assert [source[i] for i in range(-9, 0)] == want
    again = pickle.loads(pickle.dumps(source))
    assert [again[i] for i in (8, 0, 5, 4)] == [want[i] for i in (8, 0, 5, 4)]
    with pytest.raises(IndexError):
        source[9]
    with pytest.raises(TypeError):
        source["1"]  # type: ignore[index]


@pytest.mark.parametrize("on_corrupt", ["raise", "skip"])
@pytest.mark.parametrize("damage", ["data", "length_crc"])
def test_damage_found_when_read_is_named_the_same(
    tmp_path: Path, on_corrupt: str, damage: str
) -> None:
    path = tmp_path / "a.tfrecord"
    recs = _records(6)
    write_records(str(path), recs)
    # two sources that loaded the intact file's index: the damage is found when read
    scalar_source = RecordSource(str(path), on_corrupt=on_corrupt)
    batch_source = RecordSource(str(path), on_corrupt=on_corrupt)
    assert scalar_source[0] == batch_source.read([0])[0] == recs[0]
    offset = sum(16 + len(r) for r in recs[:3])
    with open(path, "r+b") as fh:  # in place: the same size, the index still current
        fh.seek(offset + (13 if damage == "data" else 9))
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    scalar = _error(lambda: scalar_source[3])
    batch = _error(lambda: batch_source.read([3]))
    assert scalar == batch
    assert scalar[2:5] == (str(path), 3, offset)
    reason = "data_crc_mismatch" if damage == "data" else "length_crc_mismatch"
    assert scalar[5] == (reason if on_corrupt == "raise" else "data_crc_mismatch")
    if on_corrupt == "skip":
        assert len(scalar_source._records.report.skipped) == 1
    assert scalar_source[4] == recs[4]
