"""featurepipe's benchmark suite (not part of the test suite, not installed).

Run ``python -m bench --list`` to see the benchmarks, ``python -m bench NAME
--help`` for one of them. Each benchmark lives in ``bench/<name>/run.py`` and
exposes ``main(argv: list[str] | None) -> int``; shared pieces are
``bench.datagen`` (deterministic Criteo-like data), ``bench.harness``
(subprocess measurements, results files) and ``bench.peers`` (venvs for the
libraries compared against).
"""
