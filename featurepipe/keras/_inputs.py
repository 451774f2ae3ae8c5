"""The model inputs of column specs, without TensorFlow: names, shapes and dtypes.

What :class:`~featurepipe.keras.ColumnTransform` (``tf.data``) and
``featurepipe.data`` (numpy batches) both produce, and what
:class:`~featurepipe.keras.DenseFeatures` and the canned models read:

- ``<numeric name>``: float32 ``[batch, size]``;
- ``<categorical name>`` (or ``<embedding / indicator name>``): int64
  ``[batch, max_ids]`` ids padded with ``-1``;
- ``<that name>__weights``: float32 ``[batch, max_ids]`` weights of a weighted
  column, padded with 0.
"""

from __future__ import annotations

from featurepipe.columns import ColumnSpecs, NumericColumn, WeightedColumn, model_columns

__all__ = ["WEIGHTS_SUFFIX", "transform_inputs"]

WEIGHTS_SUFFIX = "__weights"


def transform_inputs(specs: ColumnSpecs) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """The model inputs of column specs: ``{name: (shape, dtype)}``.

    Shapes leave out the batch dimension; ``None`` is a variable number of ids.

    Examples:
        >>> from featurepipe.columns import HashedColumn
        >>> transform_inputs(ColumnSpecs((NumericColumn("x"), HashedColumn("c", 8))))
        {'x': ((1,), 'float32'), 'c': ((None,), 'int64')}
    """
    out: dict[str, tuple[tuple[int | None, ...], str]] = {}
    for name, spec in model_columns(specs):
        if isinstance(spec, NumericColumn):
            out[name] = ((spec.size,), "float32")
        elif isinstance(spec, WeightedColumn):
            out[name] = ((None,), "int64")
            out[name + WEIGHTS_SUFFIX] = ((None,), "float32")
        else:
            out[name] = ((None,), "int64")
    return out
