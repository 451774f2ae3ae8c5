"""One measured thing of the Keras-backends benchmark, run in a process of its own.

``python -m bench.keras_backends.worker TASK '{"train": ..., ...}'`` prints one JSON
line. The backend is chosen here, before anything imports Keras:

* ``tf``: ``KERAS_BACKEND=tensorflow``, featurepipe's ``make_dataset`` (``tf.data``) feeding
  the canned ``wide_and_deep_model``;
* ``jax`` / ``torch``: ``KERAS_BACKEND=jax|torch`` in a process where ``import tensorflow``
  fails, ``featurepipe.data.Loader`` + ``featurepipe.keras.loader_dataset`` feeding the same
  model;
* ``jax_widths``: compile counts and times of a jitted JAX train step over batches whose id
  widths vary (a multivalent column), with ``id_width=None`` and ``"pow2"`` (no TensorFlow).

Training is one epoch; examples/s count the full batches after the first step (the first
traces and compiles the step; its time is reported apart) and before the last, short one
(on JAX a new batch size compiles again).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

BACKENDS = {"tf": "tensorflow", "jax": "jax", "torch": "torch", "jax_widths": "jax"}

if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] in BACKENDS:
    os.environ["KERAS_BACKEND"] = BACKENDS[sys.argv[1]]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if sys.argv[1] != "tf":
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    import warnings

    # int64 ids become int32 on JAX without x64 (what the layers use anyway)
    warnings.filterwarnings("ignore", "Explicitly requested dtype int64", UserWarning)

__all__ = ["TASKS", "main"]


def _columns(a: dict[str, Any]) -> tuple[Any, Any]:
    from bench.train.worker import fp_columns

    return fp_columns(a, buckets=a["buckets"], dim=a["dim"])


def _model(a: dict[str, Any]) -> Any:
    from featurepipe.keras import wide_and_deep_model

    wide, deep = _columns(a)
    return wide_and_deep_model(
        wide, deep, a["hidden"], dnn_optimizer="adam", dnn_learning_rate=a["lr"]
    )


def _Marks() -> Any:  # noqa: N802 - a class made once Keras is imported
    """A Keras callback that records the time at the end of each training step."""
    import keras

    class Marks(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.marks: list[float] = []

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.marks.append(time.perf_counter())

    return Marks()


def _timed_fit(model: Any, train: Any) -> dict[str, Any]:
    import keras

    timer = _Marks()
    t0 = time.perf_counter()
    history = model.fit(train, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    marks = timer.marks
    return {
        "backend": keras.backend.backend(),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "steps": len(marks),
        "first_step_s": marks[0] - t0,
        "last_step_s": marks[-1] - marks[-2],
        "seconds": marks[-2] - marks[0],
        "loss": float(history.history["loss"][-1]),
    }


def _finish(out: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    # Full batches between the first step and the last, short one (on JAX a new batch
    # size is a new compilation: seconds, once per run; it is left out on every backend).
    out["examples"] = (out["steps"] - 2) * a["batch"]
    out["examples_per_s"] = out["examples"] / out["seconds"] if out["seconds"] > 0 else None
    return out


def task_tf(a: dict[str, Any]) -> dict[str, Any]:
    """TensorFlow backend: make_dataset (tf.data) -> wide_and_deep_model."""
    import keras
    import tensorflow as tf

    from bench.train.worker import _moments
    from featurepipe.keras import make_dataset, merge_columns

    keras.utils.set_random_seed(0)
    a["moments"] = _moments(a["train"])
    wide, deep = _columns(a)
    ds = make_dataset(
        a["train"],
        batch_size=a["batch"],
        columns=merge_columns(wide, deep),
        label_key="label",
        label_feature=tf.io.FixedLenFeature((1,), tf.int64),
        shuffle=False,
    ).map(lambda x, y: (x, tf.cast(y, tf.float32)))
    return _finish(_timed_fit(_model(a), ds), a)


def _loader_task(a: dict[str, Any]) -> dict[str, Any]:
    import keras
    import numpy as np

    from bench.train.worker import _moments
    from featurepipe.data import Loader
    from featurepipe.keras import loader_dataset, merge_columns

    keras.utils.set_random_seed(0)
    a["moments"] = _moments(a["train"])
    wide, deep = _columns(a)
    loader = Loader(
        a["train"], merge_columns(wide, deep), batch_size=a["batch"], label_key="label",
        uneven="drop",
    )  # fmt: skip

    def fix(features: Any, label: Any, *rest: Any) -> Any:
        return features, np.asarray(label, np.float32).reshape(-1, 1)

    return _finish(_timed_fit(_model(a), loader_dataset(loader, map_fn=fix)), a)


def task_jax(a: dict[str, Any]) -> dict[str, Any]:
    """JAX backend, no TensorFlow: featurepipe.data.Loader -> loader_dataset -> the model."""
    return _loader_task(a)


def task_torch(a: dict[str, Any]) -> dict[str, Any]:
    """PyTorch backend, no TensorFlow: the same as ``jax``."""
    return _loader_task(a)


def task_jax_widths(a: dict[str, Any]) -> dict[str, Any]:
    """Compiles of a jitted JAX train step as id widths vary, unpadded vs padded to pow2."""
    import keras
    import numpy as np

    from featurepipe.columns import ColumnSpecs, EmbeddingColumn, HashedColumn, NumericColumn
    from featurepipe.keras import dnn_model, loader_dataset

    rng = np.random.default_rng(0)
    batches = []
    for _ in range(a["width_batches"]):
        width = int(rng.integers(1, a["max_width"] + 1))  # the longest row of the batch
        ids = rng.integers(-1, 1000, (a["batch"], width)).astype(np.int64)
        features = {
            "tags_embedding": ids,
            "x": rng.normal(size=(a["batch"], 1)).astype(np.float32),
        }
        batches.append((features, rng.integers(0, 2, (a["batch"], 1)).astype(np.float32)))

    class Batches:
        def __len__(self) -> int:
            return len(batches)

        def set_epoch(self, epoch: int) -> None:
            pass

        def __iter__(self) -> Any:
            return iter(batches)

    specs = ColumnSpecs((NumericColumn("x"), EmbeddingColumn(HashedColumn("tags", 1000), 8)))
    out: dict[str, Any] = {
        "widths": sorted({int(b[0]["tags_embedding"].shape[1]) for b in batches})
    }
    for mode in (None, "pow2"):
        keras.utils.set_random_seed(0)
        model = dnn_model(specs, (16,))
        timer = _Marks()
        t0 = time.perf_counter()
        model.fit(loader_dataset(Batches(), id_width=mode), epochs=1, verbose=0,
                  callbacks=[timer], shuffle=False)  # fmt: skip
        marks = timer.marks
        steps = np.diff([t0, *marks])
        widths = {int(b[0]["tags_embedding"].shape[1]) for b in batches}
        if mode == "pow2":
            widths = {1 << max(0, (w - 1).bit_length()) for w in widths}
        out[str(mode)] = {
            "seconds": marks[-1] - t0,
            "shapes": len(widths),  # one jax.jit compilation each
            "fastest_step_ms": float(np.min(steps) * 1000),
            "median_step_ms": float(np.median(steps) * 1000),
        }
    return out


TASKS = {"tf": task_tf, "jax": task_jax, "torch": task_torch, "jax_widths": task_jax_widths}


def main(argv: list[str] | None = None) -> int:
    """Runs one task and prints its JSON report as the last stdout line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in TASKS:
        names = ",".join(TASKS)
        print(f"usage: python -m bench.keras_backends.worker {{{names}}} JSON", file=sys.stderr)
        return 2
    report = TASKS[args[0]](json.loads(args[1]))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
