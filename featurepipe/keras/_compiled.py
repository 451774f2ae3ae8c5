"""Parse + :class:`~featurepipe.keras.ColumnTransform` in one compiled call.

``make_dataset(..., columns=..., apply_columns=True)`` spends most of its CPU
in TensorFlow's generic ``parse_example`` and in a few ops per column (hash,
table lookup, where, to_dense, bucketize, ...), each with its own kernel launch
and intermediate tensor. :class:`CompiledTransform` does the same work in one
pass of C per batch (``featurepipe._speedups.columns_run``, without the GIL):
it decodes the features the columns need straight from the serialized
``tf.Example`` records and computes every column's ids and numbers in place.

It gives the tensors the TF ops give, bit for bit, or it gives up: the plan
(:func:`featurepipe.columns.compile_columns`, TF-free; here the parse spec's tf
dtypes become its ``"bytes"`` / ``"float"`` / ``"int64"`` kinds) is built only
for what the C code computes exactly (hashed, vocabulary, identity, bucketized,
numeric and crossed columns on ``FixedLenFeature`` / ``VarLenFeature``
inputs); for any batch it cannot decode exactly like ``tf.io.parse_example``
(see ``csrc/kernels/columns.c``) it falls back to the TF ops, which also raise
TF's own errors for bad data.

Two ways in. :func:`featurepipe.keras._reader.record_batches_dataset` (local
files, in order or shuffled) has no tf.data element per record (see there).
Other reads (remote files, several files interleaved in order) keep
``TFRecordDataset`` + ``batch`` and call the plan in the map
(:meth:`CompiledTransform.__call__`, a ``tf.cond`` picking the TF ops for a
batch it gives up on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from featurepipe.columns import ColumnPlan, PlanFeature, compile_columns, native_columns_available
from featurepipe.keras._preprocessing import ColumnTransform

__all__ = ["CompiledTransform", "native_columns_available"]

_KINDS = {tf.string: "bytes", tf.float32: "float", tf.int64: "int64"}


class CompiledTransform:
    """``serialized batch -> (inputs, label)`` through one compiled call, TF ops as fallback.

    Build it with :meth:`build`, which returns `None` when the parse spec or the
    columns need something only the TF ops do.

    Attributes:
        plan: the compiled plan (TF-free).
        slow: the TF-op path, ``serialized -> inputs`` or ``(inputs, label)``.
        dtypes: the tf dtypes of the plan's outputs.
    """

    def __init__(self, plan: ColumnPlan, slow: Callable[[tf.Tensor], Any]) -> None:
        self.plan = plan
        self.slow = slow
        self.dtypes = [tf.as_dtype(d) for d in plan.dtypes]
        self._empty = [np.zeros((0, 0), dtype=d) for d in plan.dtypes]
        if plan.label_key is not None:
            self._empty[-1] = np.zeros((0, *plan.label_shape), dtype=plan.dtypes[-1])

    @classmethod
    def build(
        cls,
        spec: Mapping[str, Any],
        transform: ColumnTransform,
        label_key: str | None,
        slow: Callable[[tf.Tensor], Any],
    ) -> CompiledTransform | None:
        """The compiled transform, or `None` where only the TF ops do the job.

        Args:
            spec: the ``tf.io.parse_example`` spec.
            transform: the column transform the TF path runs.
            label_key: the label feature, or `None`.
            slow: the TF-op path, ``serialized -> inputs`` or ``(inputs, label)``.
        """
        if not native_columns_available():
            return None
        features = _plan_features(spec)
        if features is None:
            return None
        plan = compile_columns(
            features,
            transform.specs,
            label_key=label_key,
            dense_keys=transform.dense_keys,
            base_dir=transform.base_dir,
        )
        return None if plan is None else cls(plan, slow)

    def run(self, records: list[bytes]) -> list[np.ndarray[Any, Any]] | None:
        """The outputs of one batch as arrays (inputs in order, then the label), or `None`."""
        return self.plan.run(records)

    def _numpy_fn(self, serialized: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
        out = self.plan.run(serialized.tolist())
        if out is None:
            return [np.array(False), *self._empty]
        return [np.array(True), *out]

    def __call__(self, serialized: tf.Tensor) -> Any:
        """The map function: what the TF path returns, computed by the compiled plan."""
        flat = tf.numpy_function(
            self._numpy_fn, [serialized], [tf.bool, *self.dtypes], stateful=False
        )
        ok, fast = flat[0], list(flat[1:])
        slow_shapes: list[tf.TensorShape] = []
        names = self.plan.inputs

        def slow_branch() -> list[tf.Tensor]:
            got = self.slow(serialized)
            inputs, label = got if self.plan.label_key is not None else (got, None)
            outs = [inputs[name] for name in names]
            if label is not None:
                outs.append(label)
            slow_shapes.extend(t.shape for t in outs)
            return outs

        merged = tf.cond(ok, lambda: [tf.identity(t) for t in fast], slow_branch)
        for t, shape in zip(merged, slow_shapes, strict=True):
            t.set_shape(shape)
        inputs = dict(zip(names, merged, strict=False))
        if self.plan.label_key is None:
            return inputs
        return inputs, merged[-1]


def _plan_features(spec: Mapping[str, Any]) -> dict[str, PlanFeature] | None:
    """The parse spec in the plan's terms, or `None` for an entry it does not decode."""
    out: dict[str, PlanFeature] = {}
    for key, feature in spec.items():
        if isinstance(feature, tf.io.VarLenFeature):
            shape = None
        elif isinstance(feature, tf.io.FixedLenFeature):
            shape = tuple(feature.shape)
        else:
            return None
        kind = _KINDS.get(feature.dtype)
        if kind is None:
            return None
        default = feature.default_value if shape is not None else None
        out[key] = PlanFeature(kind, shape, default)
    return out
