"""A Beam job: CSV / JSON lines / Parquet -> sharded tf.Example TFRecords with dead letters.

Run it like Beam's own examples (``apache_beam/examples/wordcount.py``)::

    python -m pipelines.convert --input 'data/*.csv.gz' --output out/train \\
        --num_shards 4 --compression gzip --max_bad_fraction 0.01 \\
        --runner DirectRunner --direct_running_mode multi_processing --direct_num_workers 2

Options this module does not know (``--runner``, ``--project``, ...) are Beam
pipeline options. Outputs: ``PREFIX-SSSSS-of-NNNNN.tfrecord[.gz]``,
``PREFIX.schema.json``, ``PREFIX.deadletter-00000-of-00001.jsonl`` and,
written last, ``PREFIX.summary.json``.

An entry point only: the job is `featurepipe.beam.convert_job` (options
`featurepipe.beam.add_convert_arguments`, pipeline `featurepipe.beam.run_convert`),
the same one ``featurepipe convert`` runs.
"""

from __future__ import annotations

import sys

from featurepipe.beam import add_convert_arguments as add_arguments
from featurepipe.beam import convert_job as run
from featurepipe.beam import run_convert as run_with_args

__all__ = ["add_arguments", "main", "run", "run_with_args"]


def main(argv: list[str] | None = None) -> int:
    """Runs the job; returns the exit status (1 with ``Error: ...`` on a data error)."""
    from featurepipe.errors import DataError

    try:
        run(argv)
    except DataError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
