"""`expand_paths`: globs and the index sidecars beside the data."""

from __future__ import annotations

import pathlib

from featurepipe.tfrecord import expand_paths


def test_a_glob_leaves_out_the_index_sidecars_of_its_files(tmp_path: pathlib.Path) -> None:
    from featurepipe.tfrecord import INDEX_SUFFIX, build_index, write_records

    for i in range(2):
        write_records(tmp_path / f"train-{i}", [b"r"])
        build_index(tmp_path / f"train-{i}").save()
    (tmp_path / f"orphan{INDEX_SUFFIX}").write_bytes(b"")  # no data file beside it: kept
    names = [pathlib.Path(p).name for p in expand_paths(str(tmp_path / "*"))]
    assert names == ["orphan.fpidx", "train-0", "train-1"]
    assert [pathlib.Path(p).name for p in expand_paths(str(tmp_path / "train-*"))] == [
        "train-0",
        "train-1",
    ]
    # asked for by name or by a pattern of sidecars, they are there
    sidecars = expand_paths(str(tmp_path / f"train-*{INDEX_SUFFIX}"))
    assert [pathlib.Path(p).name for p in sidecars] == ["train-0.fpidx", "train-1.fpidx"]
