"""The featurepipe demo: convert -> inspect -> analyze -> train on the bundled sample data.

Run it with ``python3 dev.py demo`` (or ``python -m pipelines.demo`` inside the
venv)::

    python -m pipelines.demo [--output demo_out] [--runner-mode in_memory|multi_processing]
                             [--rows N] [--epochs E] [--seed S]

Steps, each printed under its own heading with what it did:

1. **convert**: ``data/sample/census.csv`` + its schema -> gzip TFRecord shards
   of ``tf.Example``, dead letters and a summary (Beam, DirectRunner, through
   `featurepipe.beam.run_convert`, the job of ``python -m pipelines.convert``).
   Three rows are broken on purpose and are dead-lettered with their line,
   column and reason.
2. **inspect**: ``featurepipe inspect count | head | verify | schema | stats
   --html`` on the shards (the CLI, run in this process: no TensorFlow, no Beam).
3. **analyze**: vocabularies, quantile boundaries and moments of the training
   shards (Beam, through `featurepipe.beam.run_analyze`, the job of ``python -m
   pipelines.analyze``), checked against the local engine.
4. **train**: column specs suggested from the statistics of those artifacts
   (:func:`featurepipe.analysis.suggest_columns`, what ``featurepipe columns
   suggest`` prints), then
   :func:`featurepipe.keras.train` (what ``featurepipe train`` runs): a
   ``tf.data`` input pipeline (:func:`featurepipe.keras.make_dataset`) and
   featurepipe's canned wide-and-deep model, trained on the training shards and
   evaluated on the held-out shard, saved as ``.keras`` and exported as a
   SavedModel that takes serialized ``tf.Example``. The demo then reloads the
   ``.keras`` file and compares its predictions, and sends one held-out record
   through the export's ``serving_default`` signature.

Everything goes to ``--output`` (default ``demo_out/``), which is wiped at the
start; ``demo_summary.json`` there holds the key numbers. Exit status: 0 on
success, 1 when a step fails (the message names the step), 2 for bad options.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["main", "run", "run_steps"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CSV = os.path.join(ROOT, "data", "sample", "census.csv")
SAMPLE_SCHEMA = os.path.join(ROOT, "data", "sample", "census.schema.json")
#: A file the demo leaves in its output directory; only such a directory is wiped.
MARKER = ".featurepipe-demo"
NUM_SHARDS = 4
LABEL = "label"
CATEGORICAL = ("education", "native_country", "occupation", "workclass")
AGE_BINS = 10
HOURS_BINS = 5
WIDTH = 78
_EPOCH_KEYS = ("loss", "auc", "val_loss", "val_auc")


class DemoError(Exception):
    """A step of the demo failed; the message says what and how to fix it."""


@dataclass
class _State:
    """What the steps hand to each other, and the key numbers for demo_summary.json."""

    out: str
    pipeline_args: list[str]
    rows: int | None
    epochs: int
    seed: int
    summary: dict[str, Any] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)
    shard_records: dict[str, int] = field(default_factory=dict)
    schema_path: str = ""
    artifacts: str = ""


def run(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` and runs the demo; returns the exit status.

    Args:
        argv: command-line arguments. Defaults to `sys.argv[1:]`.

    Returns:
        0 when every step worked, 1 when a step failed, 2 for bad options.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.rows is not None and args.rows < 1:
        parser.error(f"--rows must be >= 1. Received: --rows {args.rows}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: --epochs {args.epochs}")
    if args.num_workers < 1:
        parser.error(f"--num-workers must be >= 1. Received: --num-workers {args.num_workers}")
    try:
        _prepare_output(args.output)
    except DemoError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 2
    return run_steps(args)


#: The command-line entry point (the same as `run`).
main = run


def run_steps(args: argparse.Namespace) -> int:
    """Runs the four steps for parsed options into the (prepared) output directory.

    Args:
        args: the parsed command line (see ``python -m pipelines.demo --help``).

    Returns:
        0 on success, 1 when a step failed.
    """
    pipeline_args = ["--runner=DirectRunner", f"--direct_running_mode={args.runner_mode}"]
    if args.runner_mode == "multi_processing":
        # The worker processes log INFO on stderr by default.
        pipeline_args += [
            f"--direct_num_workers={args.num_workers}",
            "--default_sdk_harness_log_level=ERROR",
        ]
    state = _State(
        out=os.path.abspath(args.output),
        pipeline_args=pipeline_args,
        rows=args.rows,
        epochs=args.epochs,
        seed=args.seed,
    )
    _quiet_logs()
    print(_rule("="))
    print("featurepipe demo: raw CSV -> TFRecords -> inspect -> analyze -> Keras 3 model")
    print(_rule("="))
    print(f"output directory : {state.out}")
    print(
        f"Beam runner      : DirectRunner, {args.runner_mode}"
        + (f" ({args.num_workers} workers)" if args.runner_mode == "multi_processing" else "")
    )
    print(
        f"input            : {os.path.relpath(SAMPLE_CSV, ROOT)}"
        + (f" (first {args.rows} rows)" if args.rows else " (all rows)")
    )
    steps: list[tuple[str, Callable[[_State], None]]] = [
        ("convert", _step_convert),
        ("inspect", _step_inspect),
        ("analyze", _step_analyze),
        ("train", _step_train),
    ]
    start = time.perf_counter()
    timings: dict[str, float] = {}
    for number, (name, step) in enumerate(steps, 1):
        print()
        print(_rule("="))
        print(f"Step {number}/{len(steps)}: {name}")
        print(_rule("="))
        t0 = time.perf_counter()
        try:
            step(state)
        except Exception as e:  # report any failure with the step that raised it
            from featurepipe.errors import FeaturepipeError

            print(flush=True)
            kind = "" if isinstance(e, DemoError) else f"{type(e).__name__}: "
            print(f"demo FAILED at step {number} ({name}): {kind}{e}", file=sys.stderr)
            if not isinstance(e, DemoError | FeaturepipeError):  # a bug: show where
                import traceback

                traceback.print_exc(file=sys.stderr)
            return 1
        timings[name] = round(time.perf_counter() - t0, 2)
        print(f"-- step {name} done in {timings[name]:.1f} s", flush=True)
    state.summary["seconds"] = {**timings, "total": round(time.perf_counter() - start, 2)}
    summary_path = os.path.join(state.out, "demo_summary.json")
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(state.summary, f, indent=2)
        f.write("\n")
    print()
    print(_rule("="))
    print(
        f"demo finished in {state.summary['seconds']['total']:.1f} s; "
        f"key numbers in {_rel(summary_path)}"
    )
    print(_rule("="))
    return 0


# -- step 1 ------------------------------------------------------------------------------------


def _step_convert(state: _State) -> None:
    from featurepipe.beam import add_convert_arguments, format_summary, run_convert

    source, total = SAMPLE_CSV, _count_csv_records(SAMPLE_CSV)
    if state.rows is not None:
        source = os.path.join(state.out, "input", "census.csv")
        total = _head_csv(SAMPLE_CSV, source, state.rows)
        print(f"took the first {total} data rows of the sample into {_rel(source)}")
    prefix = os.path.join(state.out, "tfrecords", "census")
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    # Rows travel in batches and a batch goes to one shard: small batches spread
    # the rows over all shards (the training step holds one shard out).
    batch_size = max(8, min(256, total // (3 * NUM_SHARDS)))
    options = {
        "input": source,
        "schema": SAMPLE_SCHEMA,
        "output": prefix,
        "num_shards": NUM_SHARDS,
        "compression": "gzip",
        "batch_size": batch_size,
    }
    argv = [arg for key, value in options.items() for arg in (f"--{key}", str(value))]
    print(f"$ python -m pipelines.convert {' '.join(_rel_args(argv + state.pipeline_args))}")
    parser = argparse.ArgumentParser()
    add_convert_arguments(parser)
    known, beam_args = parser.parse_known_args(argv + state.pipeline_args)
    with _filtered_stderr(_BEAM_WORKER_NOISE):
        summary = run_convert(known, beam_args, quiet=True)

    print()
    print(format_summary(summary))
    read, written, dead = (
        summary["rows_read"],
        summary["rows_written"],
        summary["rows_dead_lettered"],
    )
    if read != written + dead:
        raise DemoError(
            f"the counters do not add up: rows_read={read} but rows_written={written} + "
            f"rows_dead_lettered={dead}. Some rows were dropped silently."
        )
    print(f"counters add up: {read} read = {written} written + {dead} dead-lettered")
    print(
        "records per shard: "
        + ", ".join(f"{os.path.basename(s['path'])}: {s['records']}" for s in summary["shards"])
    )

    letters: list[dict[str, Any]] = []
    for path in summary["dead_letter_files"]:
        with open(path, encoding="utf-8") as f:
            letters.extend(json.loads(line) for line in f if line.strip())
    if len(letters) != dead:
        raise DemoError(
            f"the summary says {dead} rows were dead-lettered but the dead-letter files hold "
            f"{len(letters)}: {summary['dead_letter_files']}"
        )
    print(f"\ndead letters ({len(letters)}), each with its source, column and reason:")
    for d in letters:
        where = f"{os.path.basename(str(d.get('file')))}:{d.get('line')}"
        column = d.get("column") or "-"
        print(f"  {where:<16} column={column:<8} {d.get('reason'):<22} {d.get('detail')}")

    state.shards = [s["path"] for s in summary["shards"]]
    state.shard_records = {s["path"]: int(s["records"]) for s in summary["shards"]}
    state.schema_path = f"{prefix}.schema.json"
    state.summary["convert"] = {
        "rows_read": read,
        "rows_written": written,
        "rows_dead_lettered": dead,
        "dead_letters_by_reason": summary.get("dead_letters_by_reason", {}),
        "dead_letter_lines": [d.get("line") for d in letters],
        "shards": summary["shards"],
        "schema": state.schema_path,
        "dead_letter_files": summary["dead_letter_files"],
    }


# -- step 2 ------------------------------------------------------------------------------------


def _step_inspect(state: _State) -> None:
    from featurepipe.cli.main import main as featurepipe_main

    pattern = os.path.join(os.path.dirname(state.shards[0]), "census-*.tfrecord.gz")
    html = os.path.join(state.out, "stats.html")
    commands = [
        ["inspect", "count", pattern],
        ["inspect", "head", "-n", "1", state.shards[0]],
        ["inspect", "verify", pattern],
        ["inspect", "schema", pattern],
        ["inspect", "stats", pattern, "--html", html],
    ]
    for argv in commands:
        print(f"\n$ featurepipe {' '.join(_rel_args(argv))}", flush=True)
        # The CLI prints notes on stderr; show them in order with its output.
        with contextlib.redirect_stderr(sys.stdout):
            status = featurepipe_main(argv)
        sys.stdout.flush()
        if status != 0:
            raise DemoError(f"`featurepipe {' '.join(argv)}` exited with status {status}")
    if not os.path.exists(html):
        raise DemoError(f"`featurepipe inspect stats --html` did not write {html}")
    print(
        f"\nthe HTML report is {os.path.getsize(html):,} bytes, self-contained: open it in a "
        "browser"
    )
    state.summary["inspect"] = {"stats_html": html}


# -- step 3 ------------------------------------------------------------------------------------


def _step_analyze(state: _State) -> None:
    from featurepipe.analysis import Analysis, analyze_records, load_requests
    from featurepipe.beam import add_analyze_arguments, run_analyze

    train, _ = _split_shards(state)
    spec = {
        "format_version": 1,
        "analyzers": [
            *({"analyzer": "vocabulary", "key": key} for key in CATEGORICAL),
            {"analyzer": "quantiles", "key": "age", "num_bins": AGE_BINS},
            {"analyzer": "quantiles", "key": "hours_per_week", "num_bins": HOURS_BINS},
            {"analyzer": "moments", "key": "capital_gain"},
        ],
    }
    spec_path = os.path.join(state.out, "analysis_spec.json")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
    state.artifacts = os.path.join(state.out, "artifacts")
    print(
        f"analysis spec ({_rel(spec_path)}): vocabularies of {', '.join(CATEGORICAL)}; "
        f"{AGE_BINS} quantile bins of age, {HOURS_BINS} of hours_per_week; moments of "
        "capital_gain"
    )
    print(f"computed on the {len(train)} training shards only (the held-out shard stays unseen)")
    argv = [a for s in train for a in ("--input", s)]
    argv += ["--spec", spec_path, "--output", state.artifacts]
    print(f"$ python -m pipelines.analyze {' '.join(_rel_args(argv + state.pipeline_args))}")
    parser = argparse.ArgumentParser()
    add_analyze_arguments(parser)
    known, beam_args = parser.parse_known_args(argv + state.pipeline_args)
    with _filtered_stderr(_BEAM_WORKER_NOISE):
        written = run_analyze(known, beam_args)
    result = Analysis.load(state.artifacts)
    print(f"\nwrote {_rel(written)} and:")
    for name in sorted(os.listdir(state.artifacts)):
        if name != "analysis.json":
            print(f"  {_rel(os.path.join(state.artifacts, name))}")
    print()
    vocab_sizes = {}
    for key in CATEGORICAL:
        values = [str(v) for v in result.vocabulary(key)]
        vocab_sizes[key] = len(values)
        shown = ", ".join(values[:5]) + (", ..." if len(values) > 5 else "")
        print(f"  vocabulary {key:<15} {len(values):>3} values, most frequent first: {shown}")
    age = result.boundaries("age", AGE_BINS)
    hours = result.boundaries("hours_per_week", HOURS_BINS)
    print(f"  quantiles  age             {len(age)} boundaries: {_floats(age)}")
    print(f"  quantiles  hours_per_week  {len(hours)} boundaries: {_floats(hours)}")
    m = result.moments("capital_gain")
    print(
        f"  moments    capital_gain    mean {m['mean']:.1f}  std {m['variance'] ** 0.5:.1f}  "
        f"min {m['min']:.0f}  max {m['max']:.0f}"
    )

    # The local engine drives the same accumulators: it must agree with Beam.
    local = analyze_records(train, load_requests(spec), statistics=False)
    same = (
        all(list(local.vocabulary(k)) == list(result.vocabulary(k)) for k in CATEGORICAL)
        and _close(local.boundaries("age", AGE_BINS), age)
        and _close(local.boundaries("hours_per_week", HOURS_BINS), hours)
        and abs(local.moments("capital_gain")["mean"] - m["mean"])
        <= 1e-6 * max(1.0, abs(m["mean"]))
    )
    print(
        "\ncross-check: the local engine (`featurepipe analyze --local`, no Beam) on the same "
        "shards gives "
        + (
            "the same vocabularies, boundaries and moments"
            if same
            else "DIFFERENT results (see featurepipe.analysis._artifacts): reported, not fatal"
        )
    )
    state.summary["analyze"] = {
        "artifacts": state.artifacts,
        "vocabulary_sizes": vocab_sizes,
        "age_boundaries": list(age),
        "hours_per_week_boundaries": list(hours),
        "capital_gain_moments": {k: m[k] for k in ("mean", "variance", "min", "max")},
        "local_engine_agrees": bool(same),
    }


# -- step 4 ------------------------------------------------------------------------------------


def _step_train(state: _State) -> None:
    t0 = time.perf_counter()
    with _filtered_stderr(_TF_START_NOISE):
        import keras
        import numpy as np
        import tensorflow as tf

        from featurepipe.keras import make_dataset, train

    from featurepipe.analysis import load_statistics, suggest_columns
    from featurepipe.example import Schema
    from featurepipe.keras import merge_columns, split_columns

    print(
        f"imported TensorFlow {tf.__version__} and Keras {keras.__version__} "
        f"({keras.backend.backend()} backend) in {time.perf_counter() - t0:.1f} s"
    )
    train_files, held_out = _split_shards(state)
    n_train = sum(state.shard_records[s] for s in train_files)
    n_eval = sum(state.shard_records[s] for s in held_out)
    print(
        f"split by shard: train on {len(train_files)} shards ({n_train} examples), hold out "
        f"{_rel(held_out[0])} ({n_eval} examples)"
    )

    # Column specs: suggested from the statistics `analyze` wrote (what `featurepipe columns
    # suggest DATA --label label --artifacts DIR` prints), every value filled in from them.
    stats_path = os.path.join(state.artifacts, "statistics.json")
    suggestion = suggest_columns(load_statistics(stats_path), LABEL)
    suggested_path = os.path.join(state.out, "suggested_columns.json")
    with open(suggested_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(suggestion.to_json(), indent=2) + "\n")
    print(
        f"$ featurepipe columns suggest <training shards> --label {LABEL} "
        f"--artifacts {_rel(state.artifacts)} > {_rel(suggested_path)}"
    )
    for line in suggestion.lines():
        print(f"  {line}")
    # wide_and_deep: categorical and indicator columns to the linear part, embeddings and
    # numbers to the DNN (featurepipe.keras.split_columns).
    wide_specs, deep_specs = split_columns(suggestion.specs)
    all_specs = merge_columns(wide_specs, deep_specs)
    specs_path = os.path.join(state.out, "column_specs.json")
    all_specs.save(specs_path)
    print(f"\ncolumn specs, saved to {_rel(specs_path)}:")
    for part, specs in (("wide", wide_specs), ("deep", deep_specs)):
        for spec in specs:
            print(f"  {part:<4} {spec.name:<38} {_describe(spec)}")

    schema = Schema.load(state.schema_path)

    # featurepipe.keras.train: the `featurepipe train` command's function. It builds the
    # tf.data input pipeline (make_dataset: shuffled files and records, the columns on the
    # CPU) and featurepipe's canned wide-and-deep model: the linear part gives every id of the
    # sparse columns one weight (looked up and summed, no one-hot matrix), the DNN runs on the
    # dense columns; trained jointly, FTRL for the linear part and Adagrad for the DNN (the
    # Estimator's defaults), updating only the rows each batch touches. Then it evaluates on
    # the held-out shard and writes model.keras, columns.json, metrics.json and the serving
    # export.
    print(
        f"\nmodel: featurepipe.keras.train(model='wide_and_deep'): linear part on "
        f"{len(wide_specs)} wide columns + DenseFeatures({len(deep_specs)} deep columns) -> "
        "Dense 32 -> Dense 16"
    )
    print(
        f"training {state.epochs} epochs, batch 64, FTRL (linear part) + Adagrad (DNN), "
        "validating on the held-out shard"
    )

    class _Printer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            got = {k: float((logs or {}).get(k, float("nan"))) for k in _EPOCH_KEYS}
            print(
                f"  epoch {epoch + 1:>2}/{state.epochs}  loss {got['loss']:.4f}  "
                f"auc {got['auc']:.4f}  | held-out loss {got['val_loss']:.4f}  "
                f"auc {got['val_auc']:.4f}",
                flush=True,
            )

    result = train(
        train_files,
        all_specs,
        label_key=LABEL,
        output_dir=state.out,
        model="wide_and_deep",
        schema=schema,
        eval_data=held_out,
        epochs=state.epochs,
        batch_size=64,
        hidden_units=(32, 16),
        seed=state.seed,
        callbacks=[_Printer()],
        verbose=0,
    )
    model, metrics = result.model, result.metrics
    losses = [float(x) for x in result.history["loss"]]
    trend = "fell" if losses[-1] < losses[0] else "did NOT fall"
    print(
        f"training loss {trend}: {losses[0]:.4f} -> {losses[-1]:.4f} "
        f"({metrics['train_seconds']:.1f} s for {state.epochs} epochs; "
        f"{model.count_params():,} parameters)"
    )

    scores = metrics["eval"]
    # The held-out examples as the model reads them, for the checks below.
    eval_ds = make_dataset(
        held_out, batch_size=64, schema=schema, columns=result.columns, label_key=LABEL,
        shuffle=False,
    )  # fmt: skip
    batches = [(x, y.numpy()) for x, y in eval_ds]
    labels = np.concatenate([y for _, y in batches]).reshape(-1)
    base = float(max(labels.mean(), 1 - labels.mean()))
    print(
        f"\nFinal held-out AUC: {scores['auc']:.4f}  accuracy: {scores['accuracy']:.4f}  "
        f"loss: {scores['loss']:.4f}  ({len(labels)} examples; always guessing the majority "
        f"class scores accuracy {base:.4f})"
    )

    path = result.model_path
    restored = keras.models.load_model(path)
    # Eager calls: no second traced predict function to build for a few batches.
    want = np.concatenate([np.asarray(model(x, training=False)) for x, _ in batches])
    got = np.concatenate([np.asarray(restored(x, training=False)) for x, _ in batches])
    diff = float(np.max(np.abs(want - got)))
    if not np.allclose(want, got, rtol=1e-6, atol=1e-6):
        raise DemoError(
            f"the reloaded model predicts differently: max |difference| {diff:.3g} on "
            f"{len(want)} held-out examples ({_rel(path)})"
        )
    print(
        f"saved {_rel(path)} ({os.path.getsize(path):,} bytes; vocabularies as assets), "
        f"reloaded it: predictions on {len(want)} held-out examples match "
        f"(max |difference| {diff:.1g})"
    )

    # The serving export: a SavedModel whose serving_default signature takes serialized
    # tf.Example strings, parses them, applies the columns and runs the model.
    from featurepipe.tfrecord import read_records

    export_dir = result.export_dir
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    record = next(iter(read_records(held_out[0])))
    served = serve(examples=tf.constant([record]))
    p_served = float(served["logistic"].numpy()[0, 0])
    served_diff = abs(p_served - float(want[0, 0]))
    if served_diff > 1e-5:
        raise DemoError(
            f"the exported SavedModel predicts {p_served:.6f} for the first held-out example; "
            f"the model in memory predicts {float(want[0, 0]):.6f} ({_rel(export_dir)})"
        )
    print(
        f"exported {_rel(export_dir)} (SavedModel; serving_default takes serialized "
        f"tf.Example), reloaded it, sent the first held-out record ({len(record)} bytes): "
        f"P(label=1) = {p_served:.4f}, class {served['classes'].numpy()[0, 0].decode()} "
        f"(the model in memory: {float(want[0, 0]):.4f})"
    )
    state.summary["train"] = {
        "train_examples": n_train,
        "held_out_examples": len(labels),
        "epochs": state.epochs,
        "loss_per_epoch": losses,
        "held_out_auc": float(scores["auc"]),
        "held_out_accuracy": float(scores["accuracy"]),
        "majority_class_accuracy": base,
        "model": path,
        "metrics": os.path.join(result.output_dir, "metrics.json"),
        "column_specs": specs_path,
        "suggested_columns": suggested_path,
        "reload_max_abs_difference": diff,
        "export": export_dir,
        "served_probability": p_served,
        "served_max_abs_difference": served_diff,
    }


# -- helpers -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.demo",
        description=(__doc__ or "").split("\n", 1)[0],
    )
    parser.add_argument(
        "--output",
        default="demo_out",
        help=f"output directory, wiped at the start (default demo_out; an existing non-empty "
        f"directory is wiped only if an earlier demo made it, i.e. it holds {MARKER})",
    )
    parser.add_argument(
        "--runner-mode",
        "--runner_mode",
        dest="runner_mode",
        choices=("in_memory", "multi_processing"),
        default="in_memory",
        help="DirectRunner mode of the Beam steps (default in_memory)",
    )
    parser.add_argument(
        "--num-workers",
        "--num_workers",
        dest="num_workers",
        type=int,
        default=2,
        help="DirectRunner workers with --runner-mode multi_processing (default 2)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="use only the first N rows of the sample (a quick run; default: all 3000)",
    )
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    return parser


def _prepare_output(path: str) -> None:
    """Empties ``path`` (only if it is new, empty, or an earlier demo's) and marks it."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise DemoError(f"--output must be a directory. Received: --output {path!r} (a file)")
        if os.listdir(path) and not os.path.exists(os.path.join(path, MARKER)):
            raise DemoError(
                f"--output {path!r} is a non-empty directory that this demo did not create "
                f"(no {MARKER} file in it); the demo wipes its output, so pass a new or empty "
                "directory."
            )
        shutil.rmtree(path)
    os.makedirs(path)
    with open(os.path.join(path, MARKER), "w", encoding="utf-8") as f:
        f.write("made by `python -m pipelines.demo`; wiped by its next run\n")


def _head_csv(src: str, dst: str, rows: int) -> int:
    """Copies the header and the first ``rows`` records of ``src`` (quoting kept)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    kept = 0
    with (
        open(src, newline="", encoding="utf-8") as f,
        open(dst, "w", newline="", encoding="utf-8") as g,
    ):
        writer = csv.writer(g)
        for i, record in enumerate(csv.reader(f)):
            if i > rows:
                break
            writer.writerow(record)
            kept = i
    return kept


def _count_csv_records(path: str) -> int:
    """The number of data records (rows after the header) of a CSV file."""
    with open(path, newline="", encoding="utf-8") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def _split_shards(state: _State) -> tuple[list[str], list[str]]:
    """Training shards and the held-out shard (the last one with records)."""
    filled = [s for s in state.shards if state.shard_records.get(s, 0) > 0]
    if len(filled) < 2:
        raise DemoError(
            f"need at least 2 non-empty shards to hold one out, got {len(filled)} of "
            f"{len(state.shards)} ({state.shard_records}); use more --rows"
        )
    return filled[:-1], filled[-1:]


def _describe(spec: Any) -> str:
    from featurepipe.columns import (
        BucketizedColumn,
        CrossedColumn,
        EmbeddingColumn,
        HashedColumn,
        IndicatorColumn,
        NumericColumn,
        VocabularyColumn,
    )

    if isinstance(spec, BucketizedColumn):
        return f"{spec.num_ids} buckets at {_floats(spec.bin_boundaries or ())}"
    if isinstance(spec, NumericColumn):
        n = spec.normalizer
        if n is not None and n.kind == "z_score":
            return f"z-score (mean {n.mean:.1f}, std {(n.variance or 0.0) ** 0.5:.1f})"
        return f"numeric ({spec.dtype})"
    if isinstance(spec, IndicatorColumn | EmbeddingColumn):
        cat = spec.categorical_column
        if isinstance(cat, VocabularyColumn):
            what = f"vocabulary of {len(cat.load_vocabulary())} + {cat.num_oov_buckets} OOV"
        elif isinstance(cat, HashedColumn):
            what = f"hashed into {cat.num_bins} bins"
        elif isinstance(cat, CrossedColumn):
            what = f"cross hashed into {cat.num_bins} bins"
        else:
            what = type(cat).__name__
        if isinstance(spec, EmbeddingColumn):
            return f"{what} -> embedding dim {spec.dimension}"
        return f"{what} -> {spec.output_mode} indicator"
    return type(spec).__name__


#: What TensorFlow's C++ start-up prints on stderr that says nothing about this run.
_TF_START_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "Could not find cuda drivers",
    "Attempting to register factory for plugin",
)


#: What each multi_processing Beam worker prints on stderr before it reads its options.
_BEAM_WORKER_NOISE = (
    "apitools not found, and bigquery client libraries are not available",
    "INFO:__main__:Logging handler created.",
)


@contextlib.contextmanager
def _filtered_stderr(noise: Sequence[str]) -> Iterator[None]:
    """Captures file descriptor 2 (C++ logs too) and replays lines that are not ``noise``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines() if not any(n in line for n in noise)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def _quiet_logs() -> None:
    """Keeps Beam's and absl's INFO / WARNING chatter out of the demo's output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("apache_beam", "absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _floats(values: Sequence[float] | tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    if len(a) != len(b):
        return False
    return all(abs(x - y) <= 1e-9 * max(1.0, abs(y)) for x, y in zip(a, b, strict=True))


def _rule(char: str) -> str:
    return char * WIDTH


def _rel(path: str) -> str:
    """``path`` relative to the working directory when that is shorter."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") and len(rel) < len(path) else path


def _rel_args(argv: Sequence[str]) -> Iterator[str]:
    for a in argv:
        yield _rel(a) if os.path.isabs(a) else a


if __name__ == "__main__":
    sys.exit(run())
