"""A Beam job: vocabularies, quantile boundaries, moments and statistics of TFRecord shards.

Run it like Beam's own examples (``apache_beam/examples/wordcount.py``)::

    python -m pipelines.analyze --input 'out/train-*.tfrecord.gz' --spec specs.json \\
        --output artifacts/ --runner DirectRunner \\
        --direct_running_mode multi_processing --direct_num_workers 2

``--spec`` is featurepipe column specs JSON (the unresolved columns say what to
compute) or an analysis spec ``{"format_version": 1, "analyzers": [{"analyzer":
"vocabulary", "key": "city", "top_k": 1000}, {"analyzer": "quantiles", "key":
"price", "num_bins": 10}, {"analyzer": "moments", "key": "age"}]}``. Options
this module does not know (``--runner``, ``--project``, ...) are Beam pipeline
options. The output directory gets ``analysis.json`` (written last),
``statistics.json`` and one ``vocab-NNN-KEY.txt`` (+ ``.freq.txt``) per
vocabulary; see `featurepipe.analysis.Analysis`.

An entry point only: the job is `featurepipe.beam.analyze_job` (options
`featurepipe.beam.add_analyze_arguments`, pipeline `featurepipe.beam.run_analyze`),
the same one ``featurepipe analyze`` runs.
"""

from __future__ import annotations

from featurepipe.beam import add_analyze_arguments as add_arguments
from featurepipe.beam import analyze_job as run
from featurepipe.beam import read_analysis_spec as read_spec
from featurepipe.beam import run_analyze as run_with_args

__all__ = ["add_arguments", "read_spec", "run", "run_with_args"]


if __name__ == "__main__":
    import logging

    logging.getLogger().setLevel(logging.INFO)
    run()
