"""The Beam jobs behind ``featurepipe convert|analyze`` and ``python -m pipelines.convert|analyze``.

Each job is three functions: ``add_*_arguments`` (its command-line options),
``run_*`` (build and run the pipeline for parsed options) and ``*_job`` (parse
``argv``, Beam pipeline options passing through, and run). The ``pipelines/``
directory of the repository holds thin entry points over these; the
``featurepipe`` CLI calls them too.

The same options are spelled two ways: the Beam job takes ``--input``
(repeatable) and underscores, like Beam's own examples
(``apache_beam/examples/wordcount.py``); the CLI (``cli=True``) takes
positional inputs and dashes. Both spellings of a multi-word option are
accepted either way.

This module imports only the standard library at import time: Beam is imported
when a job runs, so the CLI builds its parser without loading Beam.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from featurepipe.errors import FeaturepipeError
from featurepipe.tfrecord import COMPRESSIONS

__all__ = [
    "ANALYZE_DESCRIPTION",
    "CONVERT_DESCRIPTION",
    "add_analyze_arguments",
    "add_convert_arguments",
    "analyze_job",
    "convert_job",
    "quiet_third_party_noise",
    "read_analysis_spec",
    "run_analyze",
    "run_convert",
]

#: The one-line description of the convert job (its ``--help``).
CONVERT_DESCRIPTION = (
    "A Beam job: CSV / JSON lines / Parquet -> sharded tf.Example TFRecords with dead letters."
)
#: The one-line description of the analyze job (its ``--help``).
ANALYZE_DESCRIPTION = (
    "A Beam job: vocabularies, quantile boundaries, moments and statistics of TFRecord shards."
)


# -- options shared by both jobs ----------------------------------------------------------------


def _add_inputs(parser: argparse.ArgumentParser, *, cli: bool, what: str) -> None:
    """Add the inputs: positional for the CLI, a repeatable ``--input`` for the job."""
    if cli:
        parser.add_argument("input", nargs="+", help=f"{what} files or globs (local, gs://, s3://)")
    else:
        parser.add_argument(
            "--input", action="append", required=True, help=f"{what} file or glob; repeat for more"
        )


def _option_adder(parser: argparse.ArgumentParser, *, cli: bool) -> Callable[..., None]:
    """A function ``opt(name, **kw)`` adding ``--a-b`` and ``--a_b`` (the preferred first)."""

    def opt(name: str, **kw: Any) -> None:
        dash, under = f"--{name.replace('_', '-')}", f"--{name}"
        names = [dash, under] if dash != under else [dash]
        if not cli:
            names.reverse()
        parser.add_argument(*names, dest=name, **kw)

    return opt


def _inputs(args: argparse.Namespace) -> list[str]:
    return list(args.input) if isinstance(args.input, list | tuple) else [args.input]


# -- convert --------------------------------------------------------------------------------------


def _add_runner_arguments(opt: Callable[..., None]) -> None:
    opt(
        "dask_address",
        default=None,
        metavar="ADDR",
        help="with --runner dask: the Dask scheduler, e.g. tcp://HOST:8786 "
        "(default: a new local cluster of --dask-workers processes)",
    )
    opt(
        "dask_workers",
        type=int,
        default=None,
        metavar="N",
        help="with --runner dask and no --dask-address: worker processes of the local "
        "cluster (default: one per CPU)",
    )


# -- what the user sees while a job runs ----------------------------------------------------------

# Third-party messages that are about the environment, not the user's job. Beam logs the
# first on the root logger whenever its GCP modules import without the optional
# apitools package (apache_beam/io/gcp/bigquery.py), even on jobs that never touch GCP.
_NOISE = (re.compile(r"^apitools not found"),)


class _NoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.search(message) for p in _NOISE)


_NOISE_FILTER = _NoiseFilter()
_KNOWN_ERRORS = (FeaturepipeError, KeyboardInterrupt)


def quiet_third_party_noise() -> None:
    """Drops known third-party log noise (``apitools not found ...``) on the root logger.

    Idempotent; real warnings (anything not in the list) pass.

    >>> quiet_third_party_noise(); quiet_third_party_noise()
    >>> logging.getLogger().filters.count(_NOISE_FILTER)
    1
    """
    root = logging.getLogger()
    if _NOISE_FILTER not in root.filters:
        root.addFilter(_NOISE_FILTER)


# A Python warning as `warnings.showwarning` prints it: "FILE:LINE: CategoryWarning: text".
_PY_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")


@contextlib.contextmanager
def _quiet_run(verbose: bool) -> Iterator[None]:
    """While a pipeline runs: Beam's logging off and the process's stderr (file
    descriptor 2, which the DirectRunner's worker processes inherit) kept aside.

    What featurepipe says about the job comes after, from the summary or the
    error. On success, Python warnings printed during the run are shown again
    (they are real); on an error featurepipe does not know, everything kept
    aside is shown, so nothing is lost. ``verbose`` leaves all as it was.
    """
    if verbose:
        yield
        return
    beam_logger = logging.getLogger("apache_beam")
    level = beam_logger.level
    beam_logger.setLevel(logging.CRITICAL)
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (an embedding host): only the logging part
        saved = -1
    known = False
    with tempfile.TemporaryFile(mode="w+b") as sink:
        if saved >= 0:
            os.dup2(sink.fileno(), 2)
        try:
            yield
            known = True
        except _KNOWN_ERRORS:
            known = True
            raise
        finally:
            sys.stderr.flush()
            if saved >= 0:
                os.dup2(saved, 2)
                os.close(saved)
            beam_logger.setLevel(level)
            sink.seek(0)
            lines = sink.read().decode("utf-8", "replace").splitlines()
            shown = [ln for ln in lines if _PY_WARNING.match(ln)] if known else lines[-200:]
            if shown:
                print("\n".join(shown), file=sys.stderr)


def _run(
    transform: Any,
    args: argparse.Namespace,
    pipeline_args: Sequence[str],
    recover: Callable[[Exception], Exception | None] | None = None,
) -> None:
    """Runs ``transform`` on the runner that ``pipeline_args`` and ``args`` choose.

    A failure is raised as featurepipe's own error where one is behind it:
    ``recover(e)`` first (e.g. from the job's summary), else the featurepipe
    error Beam wrapped (see `_featurepipe_error`).
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from featurepipe.beam._runners import run_pipeline, runner_arguments

    with runner_arguments(
        None,
        list(pipeline_args),
        dask_address=getattr(args, "dask_address", None),
        dask_workers=getattr(args, "dask_workers", None),
    ) as beam_args:
        p = beam.Pipeline(options=PipelineOptions(beam_args))
        _ = p | transform
        with _quiet_run(bool(getattr(args, "verbose", False))):
            try:
                run_pipeline(p)
            except Exception as e:
                found = (recover(e) if recover else None) or _featurepipe_error(e)
                if found is None or found is e:
                    raise
                raise found from e


def add_convert_arguments(parser: argparse.ArgumentParser, *, cli: bool = False) -> None:
    """Adds the conversion job's options to ``parser``.

    Args:
        parser: the parser to extend.
        cli: spell options the ``featurepipe`` CLI way (positional inputs,
            dashes); the Beam job uses ``--input`` and underscores, like Beam's
            examples. Both accept either spelling of the multi-word options.
            Defaults to `False`.

    Examples:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_convert_arguments(parser)
        >>> args, beam_args = parser.parse_known_args(
        ...     ["--input", "a.csv", "--output", "out/a", "--num-shards", "2", "--runner=X"])
        >>> args.input, args.output, args.num_shards, args.compression, beam_args
        (['a.csv'], 'out/a', 2, 'none', ['--runner=X'])
    """
    _add_inputs(parser, cli=cli, what="input")
    opt = _option_adder(parser, cli=cli)

    opt("output", required=True, help="output prefix: PREFIX-SSSSS-of-NNNNN.tfrecord[.gz]")
    opt(
        "format",
        choices=("csv", "jsonl", "parquet"),
        default=None,
        help="input format (default: from the file name)",
    )
    opt(
        "schema",
        default=None,
        help="schema JSON (featurepipe's format); default: infer it from every row",
    )
    opt(
        "num_shards",
        type=int,
        default=0,
        help="exactly this many output shards (default 0: by --shard_bytes)",
    )
    opt(
        "shard_bytes",
        type=int,
        default=256 << 20,
        help="target shard size in bytes when --num_shards is 0 (default 256 MiB)",
    )
    opt(
        "compression",
        choices=COMPRESSIONS,
        default="none",
        help="output compression (default none)",
    )
    opt(
        "max_bad_fraction",
        type=float,
        default=None,
        help="fail (exit 1) when more than this fraction of rows is dead-lettered",
    )
    opt(
        "missing_values",
        default="",
        help="comma-separated texts that mean missing, besides the empty cell (e.g. NA,null)",
    )
    opt(
        "list_columns",
        default="",
        help="comma-separated CSV columns whose cells are lists (for schema inference)",
    )
    opt("value_separator", default="|", help="separator inside list cells (default '|')")
    opt("delimiter", default=",", help="CSV delimiter (default ','; use '\\t' for TSV)")
    opt(
        "columns",
        default=None,
        metavar="A,B,C",
        help="keep only these columns (names after --rename)",
    )
    opt(
        "drop_columns",
        default="",
        metavar="A,B",
        help="leave these columns out (names after --rename)",
    )
    opt(
        "rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a column (repeatable); an empty or duplicate CSV header name is first "
        "named as pandas names it ('Unnamed: 0', 'a.1'), e.g. --rename 'Unnamed: 0=row_id'",
    )
    opt(
        "no_header",
        action="store_true",
        help="the CSV files have no header row (give --column-names)",
    )
    opt(
        "column_names",
        default=None,
        metavar="A,B,C",
        help="with --no-header: the names of the columns, in order",
    )
    opt(
        "on_new_column",
        choices=("ignore", "error"),
        default="ignore",
        help="with --schema: columns of the files that the schema lacks (SCHEMA_NEW_COLUMN) "
        "are counted in the summary and not converted (ignore, the default), or fail the "
        "job before it converts (error, exit 1)",
    )
    opt(
        "verbose",
        action="store_true",
        help="show Beam's own logging and, on an error, the traceback",
    )
    opt("batch_size", type=int, default=4096, help="rows per Beam element (default 4096)")
    opt(
        "split_bytes",
        type=int,
        default=32 << 20,
        help="cut big uncompressed inputs into parts of this size for parallel reading "
        "(default 32 MiB; 0: one worker per file)",
    )
    _add_runner_arguments(opt)


def run_convert(
    args: argparse.Namespace, pipeline_args: Sequence[str], *, quiet: bool = False
) -> dict[str, Any]:
    """Builds and runs the conversion pipeline for parsed ``args``.

    Writes ``PREFIX-SSSSS-of-NNNNN.tfrecord[.gz]``, ``PREFIX.schema.json``,
    ``PREFIX.deadletter-00000-of-00001.jsonl`` and, last,
    ``PREFIX.summary.json``; prints a short summary on stderr.

    Args:
        args: options parsed by a parser that `add_convert_arguments` built.
        pipeline_args: Beam pipeline options (``--runner``, ...).
        quiet: do not print the summary. Defaults to `False`.

    Returns:
        The summary dict (``PREFIX.summary.json``).

    Raises:
        featurepipe.errors.DataError: when the job fails on data, e.g. more bad
            rows than ``max_bad_fraction`` (the message names the counts).
        featurepipe.errors.ConfigError: for bad options.

    Examples:
        >>> import argparse, json, os, tempfile
        >>> tmp = tempfile.mkdtemp()
        >>> with open(os.path.join(tmp, "rows.csv"), "w") as f:
        ...     _ = f.write("x,y\\n1,a\\n2,b\\n")
        >>> parser = argparse.ArgumentParser()
        >>> add_convert_arguments(parser)
        >>> args = parser.parse_args(["--input", os.path.join(tmp, "rows.csv"),
        ...                           "--output", os.path.join(tmp, "out", "rows")])
        >>> summary = run_convert(args, ["--runner=DirectRunner"], quiet=True)
        >>> summary["rows_read"], summary["rows_written"], summary["rows_dead_lettered"]
        (2, 2, 0)
    """
    quiet_third_party_noise()
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    from featurepipe.beam._convert import (
        SCHEMA_NEW_COLUMN,
        BadFractionError,
        ConvertToExamples,
        ShardOptions,
        format_summary,
        read_summary,
    )
    from featurepipe.convert import ConvertOptions, ReadOptions
    from featurepipe.errors import DataError
    from featurepipe.example import Schema

    schema = None
    if args.schema:
        with FileSystems.open(args.schema, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            schema = Schema.from_json(f.read().decode("utf-8"))
    delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    transform = ConvertToExamples(
        _inputs(args),
        args.output,
        schema=schema,
        read_options=ReadOptions(
            format=args.format,
            delimiter=delimiter,
            batch_size=args.batch_size,
            split_bytes=args.split_bytes,
            header=not getattr(args, "no_header", False),
            column_names=_names(getattr(args, "column_names", None)),
            columns=_names(getattr(args, "columns", None)),
            drop_columns=_split(getattr(args, "drop_columns", "")),
            rename=_renames(getattr(args, "rename", None) or ()),
        ),
        convert_options=ConvertOptions(
            missing_values=("", *_split(args.missing_values)),
            list_columns=_split(args.list_columns),
            value_separator=args.value_separator,
            on_new_column=getattr(args, "on_new_column", "ignore"),
        ),
        shard_options=ShardOptions(
            num_shards=args.num_shards,
            shard_bytes=args.shard_bytes,
            compression=args.compression,
            max_bad_fraction=args.max_bad_fraction,
        ),
    )

    def recover(e: Exception) -> Exception | None:
        summary = _try_summary(read_summary, args.output)
        if not (
            summary
            and summary.get("run_id") == transform.layout.run_id
            and (summary.get("status") == "failed")
        ):
            return None
        if summary.get("failure") == SCHEMA_NEW_COLUMN:
            new = sorted(summary.get("unexpected_columns") or {})
            return DataError(
                f"column(s) {new!r} of the inputs are not in the schema; no shards were "
                "written. Add them to the schema, leave them out with --drop-columns, or "
                "pass --on-new-column ignore to convert without them.",
                path=args.output,
                reason=SCHEMA_NEW_COLUMN,
            )
        return BadFractionError(
            f"{summary['rows_dead_lettered']} of {summary['rows_read']} rows were "
            f"dead-lettered, more than max_bad_fraction={args.max_bad_fraction}; no shards "
            f"were written. Dead letters: {', '.join(summary['dead_letter_files'])} "
            "(each with its file, line, column and reason): fix those rows or the "
            "schema, or allow more with --max-bad-fraction.",
            path=args.output,
            reason="max_bad_fraction",
        )

    _run("Convert" >> transform, args, pipeline_args, recover)
    summary = read_summary(args.output)
    if not quiet:
        print(format_summary(summary), file=sys.stderr)
    return summary


def convert_job(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parses ``argv`` (unknown options are Beam's) and runs the conversion.

    The body of ``python -m pipelines.convert``.

    Args:
        argv: command-line arguments. Defaults to `sys.argv[1:]`.

    Returns:
        The summary written to ``PREFIX.summary.json``.

    Raises:
        featurepipe.errors.DataError: see `run_convert`.
        featurepipe.errors.ConfigError: see `run_convert`.

    Examples:
        >>> import os, tempfile
        >>> tmp = tempfile.mkdtemp()
        >>> with open(os.path.join(tmp, "rows.jsonl"), "w") as f:
        ...     _ = f.write('{"x": 1}\\n{"x": 2}\\n{"x": 3}\\n')
        >>> summary = convert_job(["--input", os.path.join(tmp, "rows.jsonl"),
        ...     "--output", os.path.join(tmp, "rows"), "--num_shards", "1",
        ...     "--runner", "DirectRunner"])  # prints a short summary on stderr
        >>> summary["status"], summary["rows_written"], len(summary["shards"])
        ('ok', 3, 1)
    """
    parser = argparse.ArgumentParser(description=CONVERT_DESCRIPTION)
    add_convert_arguments(parser)
    known, pipeline_args = parser.parse_known_args(None if argv is None else list(argv))
    return run_convert(known, pipeline_args)


def _split(text: str) -> tuple[str, ...]:
    return tuple(t for t in (text or "").split(",") if t)


def _names(text: str | None) -> tuple[str, ...] | None:
    """``--columns a,b`` -> ``("a", "b")``; not given -> ``None``."""
    return None if text is None else tuple(t.strip() for t in text.split(","))


def _renames(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--rename OLD=NEW`` values as pairs (split at the last ``=``).

    >>> _renames(["Unnamed: 0=row_id", "a=b"])
    (('Unnamed: 0', 'row_id'), ('a', 'b'))
    """
    from featurepipe.errors import ConfigError

    pairs = []
    for item in items:
        old, sep, new = item.rpartition("=")
        if not sep or not old or not new:
            raise ConfigError(
                f"--rename takes OLD=NEW (a column's name, then its new name). Received: {item!r}"
            )
        pairs.append((old, new))
    return tuple(pairs)


def _try_summary(read: Any, prefix: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = read(prefix)
    except Exception:
        return None
    return out


# Beam re-raises a worker's exception as `type(e)(f"{e} [while running 'STEP']")`, which turns
# a DataError into one without its path ("<stream>: data_error: PATH, record 0: ..."); across
# processes only the text arrives. The original featurepipe message is found again here.
_WHILE = re.compile(r" \[while running '[^']*'\]")
_WRAPPED = re.compile(r"<stream>: data_error: ")
_MESSAGE = re.compile(
    r"(?P<path>[^\s:'\\\[][^\n]*?)(?:, record (?P<record>\d+))?(?:, offset (?P<offset>\d+))?"
    r": (?P<reason>[A-Za-z_][\w.]*): (?P<detail>[^\n]*)"
)


def _featurepipe_error(e: BaseException) -> Exception | None:
    """The featurepipe error behind an exception Beam raised, with its path; or ``None``.

    >>> from featurepipe.errors import DataError
    >>> inner = DataError("The CSV header cannot be parsed.", path="a.csv", record=0,
    ...                   reason="bad_header")
    >>> wrapped = RuntimeError(f"Pipeline failed: {inner} [while running 'Convert/Read']")
    >>> str(_featurepipe_error(wrapped))
    'a.csv, record 0: bad_header: The CSV header cannot be parsed.'
    """
    from featurepipe.errors import ConfigError, DataError

    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConfigError):
            return cur
        if isinstance(cur, DataError) and cur.path is not None and cur.path != "<stream>":
            return cur
        cur = cur.__cause__ or cur.__context__
    text = _WRAPPED.sub("", _WHILE.sub("", str(e)))
    for m in _MESSAGE.finditer(text):
        path = m.group("path").split(": ")[-1].strip()
        if path.startswith("<") or " " in path.strip("/"):
            continue
        record, offset = m.group("record"), m.group("offset")
        return DataError(
            m.group("detail").strip(),
            path=path,
            record=None if record is None else int(record),
            offset=None if offset is None else int(offset),
            reason=m.group("reason"),
        )
    return None


# -- analyze --------------------------------------------------------------------------------------


def add_analyze_arguments(parser: argparse.ArgumentParser, *, cli: bool = False) -> None:
    """Adds the analysis job's options to ``parser``.

    Args:
        parser: the parser to extend.
        cli: spell options the ``featurepipe`` CLI way (positional inputs,
            dashes); the Beam job uses ``--input`` and underscores. Both accept
            either spelling of multi-word options. Defaults to `False`.

    Examples:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_analyze_arguments(parser, cli=True)
        >>> args = parser.parse_args(["a-*", "b-*", "--spec", "s.json", "--output", "art",
        ...                           "--no_statistics"])
        >>> args.input, args.spec, args.eps, args.compression, args.no_statistics
        (['a-*', 'b-*'], 's.json', 0.01, 'auto', True)
    """
    _add_inputs(parser, cli=cli, what="TFRecord")
    opt = _option_adder(parser, cli=cli)

    opt("spec", required=True, help="column specs JSON or analysis spec JSON (what to compute)")
    opt("output", required=True, help="the artifact directory")
    opt("eps", type=float, default=0.01, help="rank error of quantile boundaries (default 0.01)")
    opt("batch_size", type=int, default=1024, help="records per Beam element (default 1024)")
    opt(
        "compression",
        choices=("auto", *COMPRESSIONS),
        default="auto",
        help="input compression (default: detect from the first bytes)",
    )
    opt("no_statistics", action="store_true", help="skip statistics.json")
    opt(
        "verbose",
        action="store_true",
        help="show Beam's own logging and, on an error, the traceback",
    )
    _add_runner_arguments(opt)


def read_analysis_spec(path: str, *, beam_filesystems: bool = True) -> list[Any]:
    """Reads the analyzer requests of a spec file.

    The file is featurepipe column specs JSON (the unresolved columns say what
    to compute) or an analysis spec ``{"format_version": 1, "analyzers": [...]}``.

    Args:
        path: the spec file.
        beam_filesystems: open it through Beam's FileSystems (``gs://`` ...)
            when Beam is installed; else a local file. Defaults to `True`.

    Returns:
        The `featurepipe.analysis.AnalyzerRequest` list.

    Raises:
        featurepipe.errors.ConfigError: a missing file or an invalid spec.

    Examples:
        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "spec.json")
        >>> with open(path, "w") as f:
        ...     json.dump({"format_version": 1, "analyzers": [
        ...         {"analyzer": "moments", "key": "age"}]}, f)
        >>> len(read_analysis_spec(path, beam_filesystems=False))
        1
        >>> read_analysis_spec(path + ".missing")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        featurepipe.errors.ConfigError: Cannot read the analysis spec. Received: spec=...
    """
    from featurepipe.analysis import load_requests
    from featurepipe.errors import ConfigError

    if beam_filesystems:
        try:
            from apache_beam.io.filesystem import CompressionTypes
            from apache_beam.io.filesystems import FileSystems
        except ImportError:
            beam_filesystems = False
    try:
        if beam_filesystems:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                return load_requests(f.read().decode("utf-8"))
        with open(path, encoding="utf-8") as f:
            return load_requests(f.read())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read the analysis spec. Received: spec={path!r} ({e})") from e


def run_analyze(args: argparse.Namespace, pipeline_args: Sequence[str]) -> str:
    """Builds and runs the analysis pipeline for parsed ``args``.

    The output directory gets ``analysis.json`` (written last),
    ``statistics.json`` and one ``vocab-NNN-KEY.txt`` (+ ``.freq.txt``) per
    vocabulary (see `featurepipe.analysis.Analysis`).

    Args:
        args: options parsed by a parser that `add_analyze_arguments` built.
        pipeline_args: Beam pipeline options (``--runner``, ...).

    Returns:
        The path of the written ``analysis.json``.

    Raises:
        featurepipe.errors.ConfigError: bad options or spec.
        featurepipe.errors.DataError: damaged input or a feature of the wrong kind.

    Examples:
        >>> import argparse, json, os, tempfile
        >>> from featurepipe import encode_example, write_records
        >>> tmp = tempfile.mkdtemp()
        >>> write_records(os.path.join(tmp, "part-0"),
        ...               [encode_example({"x": v}) for v in (1.0, 2.0, 3.0)])
        3
        >>> with open(os.path.join(tmp, "spec.json"), "w") as f:
        ...     json.dump({"format_version": 1, "analyzers": [
        ...         {"analyzer": "moments", "key": "x"}]}, f)
        >>> parser = argparse.ArgumentParser()
        >>> add_analyze_arguments(parser)
        >>> args = parser.parse_args(["--input", os.path.join(tmp, "part-*"),
        ...     "--spec", os.path.join(tmp, "spec.json"), "--output", os.path.join(tmp, "art")])
        >>> os.path.basename(run_analyze(args, ["--runner=DirectRunner"]))
        'analysis.json'
    """
    quiet_third_party_noise()
    from apache_beam.io.filesystems import FileSystems

    from featurepipe.beam._analyze import AnalyzeDataset

    requests = read_analysis_spec(args.spec)
    transform = AnalyzeDataset(
        _inputs(args),
        requests,
        args.output,
        eps=args.eps,
        batch_size=args.batch_size,
        statistics=not args.no_statistics,
        compression=args.compression,
    )
    _run("Analyze" >> transform, args, pipeline_args)
    return str(FileSystems.join(args.output, "analysis.json"))


def analyze_job(argv: Sequence[str] | None = None) -> str:
    """Parses ``argv`` (unknown options are Beam's) and runs the analysis.

    The body of ``python -m pipelines.analyze``; see `run_analyze`.

    Args:
        argv: command-line arguments. Defaults to `sys.argv[1:]`.

    Returns:
        The path of the written ``analysis.json``.

    Examples:
        >>> import json, os, tempfile
        >>> from featurepipe import encode_example, write_records
        >>> tmp = tempfile.mkdtemp()
        >>> write_records(os.path.join(tmp, "part-0"),
        ...               [encode_example({"city": c}) for c in ("a", "b", "a")])
        3
        >>> with open(os.path.join(tmp, "spec.json"), "w") as f:
        ...     json.dump({"format_version": 1, "analyzers": [
        ...         {"analyzer": "vocabulary", "key": "city"}]}, f)
        >>> written = analyze_job(["--input", os.path.join(tmp, "part-*"),
        ...     "--spec", os.path.join(tmp, "spec.json"), "--output", os.path.join(tmp, "art"),
        ...     "--no_statistics", "--runner", "DirectRunner"])
        >>> from featurepipe.analysis import Analysis
        >>> Analysis.load(os.path.join(tmp, "art")).vocabulary("city")
        ['a', 'b']
    """
    parser = argparse.ArgumentParser(description=ANALYZE_DESCRIPTION)
    add_analyze_arguments(parser)
    known, pipeline_args = parser.parse_known_args(None if argv is None else list(argv))
    return run_analyze(known, pipeline_args)
