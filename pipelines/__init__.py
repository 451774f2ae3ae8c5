"""Runnable Beam jobs: ``python -m pipelines.<job> [job options] [Beam pipeline options]``."""
