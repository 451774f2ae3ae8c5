"""Read the checkpoint of a trained canned ``tf.estimator`` model, variable by variable.

:func:`read_estimator_checkpoint` opens an Estimator ``model_dir`` (or one
checkpoint prefix) with ``tf.train.load_checkpoint`` -- no ``tf.estimator``
needed, so it works under TensorFlow releases without Estimators -- and sorts
every variable into what it is: linear weights per feature column, DNN layers,
embedding tables, the global step, optimizer slots attached to the variable
they belong to, optimizer hyperparameters, and the rest (``unrecognized``,
each with a reason). Values are read only when asked
(:meth:`CheckpointVariable.numpy`).

Naming rules (found in the fixtures of ``tests/testdata/estimators``, made by
tensorflow-estimator 2.15, and in the sources of github.com/tensorflow/estimator,
``tensorflow_estimator/python/estimator/canned/linear.py``, ``dnn.py`` and
``dnn_linear_combined.py``; TF1 slot names from github.com/tensorflow/tensorflow
``tensorflow/python/training/{ftrl,adagrad,adam,rmsprop,momentum,adadelta}.py``):

Model variables (the same for the V2 ``tf.estimator`` and the TF1
``tf.compat.v1.estimator`` classes; combined models use both prefixes):

* ``global_step`` -- int64 scalar.
* ``linear/linear_model/<column>/weights`` -- shape ``[n, logits_dimension]``,
  ``n`` = the categorical column's number of buckets or the numeric column's
  flattened size. ``<column>`` is the feature column's ``name`` (numeric and
  categorical: the key; bucketized ``<key>_bucketized``; crossed ``<a>_X_<b>``
  over the sorted names; weighted ``<cat>_weighted_by_<weight key>``) with
  every character outside ``[A-Za-z0-9_.-]`` replaced by ``_`` (linear.py
  ``_LinearModelLayer`` opens a variable scope of the sanitized name).
* ``linear/linear_model/bias_weights`` -- ``[logits_dimension]``.
* ``dnn/hiddenlayer_<i>/kernel`` ``[in, units]`` and ``.../bias`` ``[units]``,
  ``i`` from 0 (dnn.py ``_DNNModel`` / ``_DNNModelV2``).
* ``dnn/hiddenlayer_<i>/batchnorm_<i>/{gamma,beta,moving_mean,moving_variance}``
  (``batch_norm=True``; Keras BatchNormalization with momentum 0.999, dnn.py).
* ``dnn/logits/kernel`` ``[last units, logits_dimension]``, ``dnn/logits/bias``.
* ``dnn/input_from_feature_columns/input_layer/<column>/embedding_weights`` --
  the table ``[num_buckets, dimension]`` of an ``embedding_column`` (its name
  is ``<categorical name>_embedding``). TF1 ``shared_embedding_columns``
  (``tf.compat.v1.feature_column``) put their one table here too, under the
  collection name (default ``<sorted categorical names joined by _>_shared_embedding``).
* ``<collection name>`` at the top level (no scope) -- the table of
  ``tf.feature_column.shared_embeddings`` (V2): the column creator makes it
  outside the DNN's Keras layers. Because of that the V2 canned DNNs never
  train it (dnn.py passes ``dnn_model.trainable_variables`` to the optimizer):
  it has no optimizer slots and keeps its initial values.
* Partitioned variables (TF1 estimators give the linear model and the DNN's
  input layer a partitioner) are stored as ``<name>/part_<k>`` and joined
  along axis 0 here. With one partition (no parameter servers) the variable is
  stored under its plain name but its TF1 optimizer slots keep the part:
  ``linear/linear_model/age/weights/part_0/Ftrl`` (see ``v1_linear_binary``);
  they are attached to ``linear/linear_model/age/weights`` all the same.

Optimizer state:

* V2 estimators use Keras ``OptimizerV2`` (``tf.keras.optimizers.legacy``):
  slots are ``training/<Optimizer>/<variable>/<slot>`` with the Keras slot
  names (Ftrl ``accumulator`` + ``linear``; Adagrad ``accumulator``; Adam ``m``,
  ``v`` (+ ``vhat``); RMSprop ``rms`` (+ ``momentum``, ``mg``); SGD ``momentum``),
  hyperparameters ``training/<Optimizer>/<name>`` (``learning_rate``,
  ``decay``, ``beta``, ``l1_regularization_strength``, ``beta_1``, ``iter``...).
  ``<Optimizer>`` is the optimizer's name (``Ftrl``, ``Adagrad``, ``Adam``...).
  The optimizer whose ``iterations`` is the global step has no ``iter`` (in
  combined models only the DNN one, dnn_linear_combined.py).
* TF1 estimators use ``tf.compat.v1.train`` optimizers: slots are
  ``<variable>/<Optimizer>``, ``<variable>/<Optimizer>_1``, ... in the order
  the optimizer makes them (Ftrl: accumulator, linear; Adam: m, v; RMSProp:
  rms, [mg,] momentum; Adadelta: accum, accum_update; AdagradDA:
  gradient_accumulator, gradient_squared_accumulator); they are reported under
  the Keras names above (``accumulator``, ``linear``, ``m``, ``v``...). Adam's
  ``beta1_power`` / ``beta2_power`` are hyperparameters.

Example:

>>> import featurepipe.migrate as fm
>>> w = fm.read_estimator_checkpoint(
...     "my_estimator/model_dir", "LinearClassifier"
... )  # doctest: +SKIP
>>> w.linear.columns["city"].shape, w.global_step  # doctest: +SKIP
((10, 1), 80)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featurepipe.errors import ConfigError, DataError

__all__ = [
    "BatchNormWeights",
    "CheckpointVariable",
    "DNNWeights",
    "DenseLayerWeights",
    "EmbeddingTable",
    "EstimatorWeights",
    "LinearWeights",
    "OptimizerSlot",
    "OptimizerState",
    "UnrecognizedVariable",
    "read_estimator_checkpoint",
]

# class name -> (has linear part, has dnn part)
_ESTIMATORS: dict[str, tuple[bool, bool]] = {
    "LinearClassifier": (True, False),
    "LinearRegressor": (True, False),
    "LinearEstimator": (True, False),
    "DNNClassifier": (False, True),
    "DNNRegressor": (False, True),
    "DNNEstimator": (False, True),
    "DNNLinearCombinedClassifier": (True, True),
    "DNNLinearCombinedRegressor": (True, True),
    "DNNLinearCombinedEstimator": (True, True),
}

# TF1 (tf.compat.v1.train) optimizer -> its slots in creation order, by count
# (tensorflow/python/training/<optimizer>.py, `_create_slots`).
_V1_SLOTS: dict[str, dict[int, tuple[str, ...]]] = {
    "Ftrl": {2: ("accumulator", "linear")},
    "Adagrad": {1: ("accumulator",)},
    "ProximalAdagrad": {1: ("accumulator",)},
    "Adam": {2: ("m", "v")},
    "Momentum": {1: ("momentum",)},
    "RMSProp": {1: ("rms",), 2: ("rms", "momentum"), 3: ("rms", "mg", "momentum")},
    "Adadelta": {2: ("accum_grad", "accum_var")},
    "AdagradDA": {2: ("gradient_accumulator", "gradient_squared_accumulator")},
}
_V1_SLOT_RE = re.compile(r"^(.+)/(" + "|".join(_V1_SLOTS) + r")(?:_(\d+))?$")
_V1_NON_SLOT_RE = re.compile(r"^(?:.*/)?(beta1_power|beta2_power)$")
_PART_RE = re.compile(r"/part_(\d+)(?=/|$)")

_LINEAR_W = re.compile(r"^linear/linear_model/(.+)/weights$")
_LINEAR_B = "linear/linear_model/bias_weights"
_HIDDEN = re.compile(r"^dnn/hiddenlayer_(\d+)/(kernel|bias)$")
_BN = re.compile(
    r"^dnn/hiddenlayer_(\d+)/batchnorm_(\d+)/(gamma|beta|moving_mean|moving_variance)$"
)
_LOGITS = re.compile(r"^dnn/logits/(kernel|bias)$")
_EMB = re.compile(r"^dnn/input_from_feature_columns/input_layer/(.+)/embedding_weights$")


@dataclass(frozen=True)
class OptimizerSlot:
    """One optimizer slot of a variable (e.g. Ftrl's ``accumulator``).

    Attributes:
        optimizer: the optimizer's name in the checkpoint (``"Ftrl"``, ``"Adagrad"``...).
        slot: the Keras slot name (``"accumulator"``, ``"linear"``, ``"m"``, ``"v"``...).
        variable: the slot's values.
    """

    optimizer: str
    slot: str
    variable: CheckpointVariable


@dataclass
class CheckpointVariable:
    """A variable of the checkpoint (partitioned ones joined), read on demand.

    Attributes:
        name: its name in the checkpoint (without ``/part_<k>``).
        shape: its shape (partitions joined along axis 0).
        dtype: its dtype name (``"float32"``, ``"int64"``).
        parts: the names of its partitions, in order, or ``()``.
        slots: the optimizer slots of this variable, by Keras slot name.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    parts: tuple[str, ...] = ()
    slots: dict[str, OptimizerSlot] = field(default_factory=dict)
    _reader: Any = field(default=None, repr=False, compare=False)

    def numpy(self) -> np.ndarray:
        """The values, read from the checkpoint now."""
        if self.parts:
            return np.concatenate([np.asarray(self._reader.get_tensor(p)) for p in self.parts], 0)
        return np.asarray(self._reader.get_tensor(self.name))


@dataclass
class BatchNormWeights:
    """The batch normalization after one hidden layer (``batch_norm=True``)."""

    gamma: CheckpointVariable | None = None
    beta: CheckpointVariable | None = None
    moving_mean: CheckpointVariable | None = None
    moving_variance: CheckpointVariable | None = None


@dataclass
class DenseLayerWeights:
    """One dense layer: ``kernel`` ``[in, units]``, ``bias`` ``[units]``."""

    kernel: CheckpointVariable | None = None
    bias: CheckpointVariable | None = None
    batch_norm: BatchNormWeights | None = None

    @property
    def units(self) -> int | None:
        """Width of the layer (from the kernel), or None."""
        return None if self.kernel is None else self.kernel.shape[-1]


@dataclass
class EmbeddingTable:
    """An embedding table ``[num_buckets, dimension]``.

    Attributes:
        name: the embedding column's name (``city_embedding``) or the shared
            table's collection name (``item_id_prev_item_shared_embedding``).
        categorical_columns: the categorical columns looked up in it (one for
            an ``embedding_column``; for a shared table the columns sharing
            it when known -- pass ``categorical_columns=`` to
            :func:`read_estimator_checkpoint` -- else ``()``).
        shared: whether it is a shared table.
        variable: the table.
    """

    name: str
    categorical_columns: tuple[str, ...]
    shared: bool
    variable: CheckpointVariable

    @property
    def dimension(self) -> int:
        return self.variable.shape[-1]

    @property
    def num_buckets(self) -> int:
        return self.variable.shape[0]


@dataclass
class LinearWeights:
    """The linear model: ``columns`` (sanitized column name -> ``[n, logits]``), ``bias``."""

    columns: dict[str, CheckpointVariable] = field(default_factory=dict)
    bias: CheckpointVariable | None = None


@dataclass
class DNNWeights:
    """The DNN: hidden layers in order, the logits layer, the embedding tables by column name."""

    hidden_layers: list[DenseLayerWeights] = field(default_factory=list)
    logits: DenseLayerWeights = field(default_factory=DenseLayerWeights)
    embeddings: dict[str, EmbeddingTable] = field(default_factory=dict)

    @property
    def hidden_units(self) -> list[int | None]:
        return [layer.units for layer in self.hidden_layers]


@dataclass
class OptimizerState:
    """An optimizer's non-slot variables (``learning_rate``, ``iter``, ``beta1_power``...)."""

    name: str
    hyperparameters: dict[str, CheckpointVariable] = field(default_factory=dict)


@dataclass(frozen=True)
class UnrecognizedVariable:
    """A checkpoint variable that fits no known rule, and why."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    reason: str


@dataclass
class EstimatorWeights:
    """Every variable of an Estimator checkpoint, sorted by role.

    Attributes:
        checkpoint: the checkpoint prefix read (``.../model.ckpt-80``).
        estimator: the Estimator class name (``"DNNLinearCombinedClassifier"``).
        tf1: True for ``tf.compat.v1`` optimizer slot names, False for V2
            (Keras) ones, None when the checkpoint holds no optimizer state
            and ``tf1`` was not given.
        global_step: the ``global_step`` value, or None when absent.
        linear: the linear part (Linear* and combined estimators), else None.
        dnn: the DNN part (DNN* and combined estimators), else None.
        shared_embeddings: shared embedding tables by collection name.
        optimizers: optimizer hyperparameter variables by optimizer name.
        variables: every model variable (not slots, not optimizer state) by name.
        unrecognized: the variables no rule matched, each with a reason.
    """

    checkpoint: str
    estimator: str
    tf1: bool | None
    global_step: int | None
    linear: LinearWeights | None
    dnn: DNNWeights | None
    shared_embeddings: dict[str, EmbeddingTable]
    optimizers: dict[str, OptimizerState]
    variables: dict[str, CheckpointVariable]
    unrecognized: list[UnrecognizedVariable]

    @property
    def logits_dimension(self) -> int | None:
        """Width of the logits (1 for binary and regression, n_classes otherwise)."""
        if self.dnn is not None and self.dnn.logits.kernel is not None:
            return self.dnn.logits.kernel.shape[-1]
        if self.linear is not None and self.linear.bias is not None:
            return self.linear.bias.shape[-1]
        return None

    def slot_variables(self) -> list[OptimizerSlot]:
        """Every optimizer slot, in the order of ``variables``."""
        return [s for v in self.variables.values() for s in v.slots.values()]


def _snake(name: str) -> str:
    """``DNNLinearCombinedClassifier`` -> ``dnn_linear_combined_classifier``.

    Examples:
        >>> _snake("DNNLinearCombinedClassifier"), _snake("LinearRegressor")
        ('dnn_linear_combined_classifier', 'linear_regressor')
    """
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _normalize_estimator(
    estimator: str, allowed: Iterable[str] = tuple(_ESTIMATORS)
) -> tuple[str, bool | None]:
    """``tf.compat.v1.estimator.DNNClassifier`` / ``dnn_classifier`` -> (class name, tf1).

    ``tf1`` is what a ``tf.compat.v1.estimator.`` / ``tf.estimator.`` prefix
    says, `None` without one.
    """
    name = estimator.strip()
    tf1: bool | None = None
    for prefix, is_tf1 in (
        ("tf.compat.v1.estimator.", True),
        ("tensorflow.compat.v1.estimator.", True),
        ("tf.estimator.", False),
        ("tensorflow.estimator.", False),
    ):
        if name.startswith(prefix):
            name, tf1 = name[len(prefix) :], is_tf1
            break
    names = tuple(allowed)
    name = {_snake(n): n for n in names}.get(name.lower(), name)
    if name not in names:
        raise ConfigError(
            f"Unknown Estimator {estimator!r}. Allowed values are: {', '.join(names)} "
            "(optionally prefixed with tf.estimator. or tf.compat.v1.estimator.), or their "
            "snake_case names, e.g. dnn_linear_combined_classifier."
        )
    return name, tf1


def _split_shared_name(name: str, categorical: Iterable[str]) -> tuple[str, ...]:
    """The categorical columns whose names, joined by ``_``, + ``_shared_embedding`` make name."""
    suffix = "_shared_embedding"
    if not name.endswith(suffix):
        return ()
    body = name[: -len(suffix)]
    known = sorted(set(categorical), key=len, reverse=True)

    def solve(rest: str) -> list[str] | None:
        if not rest:
            return []
        for c in known:
            if rest == c:
                return [c]
            if rest.startswith(c + "_"):
                tail = solve(rest[len(c) + 1 :])
                if tail is not None:
                    return [c, *tail]
        return None

    found = solve(body)
    return tuple(found) if found and len(found) >= 2 else ()


def read_estimator_checkpoint(
    model_dir: str | os.PathLike[str],
    estimator: str,
    *,
    tf1: bool | None = None,
    categorical_columns: Iterable[str] | None = None,
) -> EstimatorWeights:
    """Read and classify every variable of a canned Estimator's checkpoint.

    Args:
        model_dir: the Estimator's ``model_dir`` (its latest checkpoint is
            read) or a checkpoint prefix such as ``model_dir/model.ckpt-80``.
        estimator: the canned Estimator class, e.g. ``"DNNClassifier"`` or
            ``"tf.compat.v1.estimator.LinearClassifier"``.
        tf1: whether it was a ``tf.compat.v1.estimator`` (TF1 optimizer slot
            names). None: found from the names (and from a
            ``tf.compat.v1.estimator.`` prefix of ``estimator``).
        categorical_columns: names of the model's categorical columns; used
            only to tell which columns share a shared embedding table.

    Returns:
        The variables sorted by role; see the module docstring for the rules.

    Raises:
        ConfigError: ``estimator`` is not a canned Estimator class name.
        DataError: no checkpoint at ``model_dir``, or it lacks the variables
            every such Estimator has (its linear or DNN part).
    """
    import tensorflow as tf

    name, prefix_tf1 = _normalize_estimator(estimator)
    if tf1 is None:
        tf1 = prefix_tf1
    want_linear, want_dnn = _ESTIMATORS[name]
    path = os.fspath(model_dir)
    try:
        reader = tf.train.load_checkpoint(path)
    except (ValueError, tf.errors.OpError) as e:
        raise DataError(
            f"cannot open an Estimator checkpoint there ({e}); pass the Estimator's "
            "model_dir (with its 'checkpoint' file) or a prefix like model_dir/model.ckpt-N",
            path=path,
            reason="no_checkpoint",
        ) from e
    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()

    # 1. join partitions: <name>/part_<k>[/<slot>] -> <name>[/<slot>]
    groups: dict[str, list[tuple[int, str]]] = {}
    for raw in shapes:
        m = _PART_RE.search(raw)
        logical = _PART_RE.sub("", raw, count=1) if m else raw
        groups.setdefault(logical, []).append((int(m.group(1)) if m else -1, raw))
    variables: dict[str, CheckpointVariable] = {}
    unrecognized: list[UnrecognizedVariable] = []
    for logical, members in sorted(groups.items()):
        members.sort()
        if len(members) == 1 and members[0][0] == -1:
            raw = members[0][1]
            variables[logical] = CheckpointVariable(
                logical, tuple(int(d) for d in shapes[raw]), dtypes[raw].name, _reader=reader
            )
            continue
        raws = [r for _, r in members]
        idx = [k for k, _ in members]
        tails = {tuple(int(d) for d in shapes[r])[1:] for r in raws}
        if idx != list(range(len(raws))) or len(tails) != 1:
            for r in raws:
                unrecognized.append(
                    UnrecognizedVariable(
                        r,
                        tuple(int(d) for d in shapes[r]),
                        dtypes[r].name,
                        f"partition of {logical!r}: partitions {idx} do not join "
                        "(a part is missing or their shapes differ)",
                    )
                )
            continue
        rows = sum(int(shapes[r][0]) for r in raws)
        variables[logical] = CheckpointVariable(
            logical,
            (rows, *next(iter(tails))),
            dtypes[raws[0]].name,
            parts=tuple(raws),
            _reader=reader,
        )

    def unknown(v: CheckpointVariable, reason: str) -> None:
        unrecognized.append(UnrecognizedVariable(v.name, v.shape, v.dtype, reason))

    # 2. optimizer state
    optimizers: dict[str, OptimizerState] = {}
    v2_slots: list[tuple[str, str, str, CheckpointVariable]] = []  # (opt, var, slot, v)
    v1_slots: dict[tuple[str, str], list[tuple[int, CheckpointVariable]]] = {}
    model: dict[str, CheckpointVariable] = {}
    for n, v in variables.items():
        if n.startswith("training/"):
            parts = n.split("/", 2)
            if len(parts) == 2:
                unknown(v, "a 'training/' variable without an optimizer scope")
            elif "/" not in parts[2]:
                optimizers.setdefault(parts[1], OptimizerState(parts[1])).hyperparameters[
                    parts[2]
                ] = v
            else:
                var, slot = parts[2].rsplit("/", 1)
                v2_slots.append((parts[1], var, slot, v))
            continue
        m1 = _V1_NON_SLOT_RE.match(n)
        if m1:
            optimizers.setdefault("Adam", OptimizerState("Adam")).hyperparameters[m1.group(1)] = v
            continue
        model[n] = v
    # a TF1 slot is <model variable>/<Optimizer>[_k]; decide after all model names are known
    for n in list(model):
        m2 = _V1_SLOT_RE.match(n)
        if m2 and m2.group(1) in model and not _V1_SLOT_RE.match(m2.group(1)):
            k = int(m2.group(3)) if m2.group(3) else 0
            v1_slots.setdefault((m2.group(1), m2.group(2)), []).append((k, model.pop(n)))

    found_tf1 = bool(v1_slots) or (
        "Adam" in optimizers and "beta1_power" in optimizers["Adam"].hyperparameters
    )
    found_v2 = bool(v2_slots) or any(n.startswith("training/") for n in variables)
    if tf1 is None and (found_tf1 or found_v2):
        tf1 = found_tf1 and not found_v2

    for opt, var, slot, v in v2_slots:
        if tf1:
            unknown(v, f"Keras (V2 estimator) optimizer slot of {var!r}, but tf1=True")
        elif var not in model:
            unknown(v, f"{opt} slot {slot!r} of {var!r}, which is not in the checkpoint")
        else:
            model[var].slots[slot] = OptimizerSlot(opt, slot, v)
    for (var, opt), found in sorted(v1_slots.items()):
        found.sort(key=lambda kv: kv[0])
        names = _V1_SLOTS[opt].get(len(found))
        ks = [k for k, _ in found]
        if tf1 is False:
            for _, v in found:
                unknown(v, f"tf.compat.v1 {opt} slot of {var!r}, but tf1=False")
        elif names is None or ks != list(range(len(found))):
            for _, v in found:
                unknown(
                    v,
                    f"{len(found)} tf.compat.v1 {opt} slots {ks} of {var!r}: expected "
                    f"{' or '.join(str(c) for c in sorted(_V1_SLOTS[opt]))} numbered 0.. "
                    f"({', '.join(' / '.join(s) for s in _V1_SLOTS[opt].values())})",
                )
        else:
            for slot, (_, v) in zip(names, found, strict=True):
                model[var].slots[slot] = OptimizerSlot(opt, slot, v)

    # 3. model variables
    linear = LinearWeights() if want_linear else None
    dnn = DNNWeights() if want_dnn else None
    hidden: dict[int, DenseLayerWeights] = {}
    shared: dict[str, EmbeddingTable] = {}
    cats = list(categorical_columns or ())
    global_step: int | None = None
    for n, v in model.items():
        if n == "global_step":
            global_step = int(v.numpy())
            continue
        mw = _LINEAR_W.match(n)
        if n == _LINEAR_B or mw:
            if linear is None:
                unknown(v, f"a linear-model variable in a {name} checkpoint")
            elif mw:
                linear.columns[mw.group(1)] = v
            else:
                linear.bias = v
            continue
        if n.startswith("dnn/") and dnn is None:
            unknown(v, f"a DNN variable in a {name} checkpoint")
            continue
        if dnn is not None:
            mh, mb, ml, me = _HIDDEN.match(n), _BN.match(n), _LOGITS.match(n), _EMB.match(n)
            if mh:
                layer = hidden.setdefault(int(mh.group(1)), DenseLayerWeights())
                setattr(layer, mh.group(2), v)
                continue
            if mb:
                if mb.group(1) != mb.group(2):
                    unknown(v, "batchnorm_<j> under hiddenlayer_<i> with i != j")
                    continue
                layer = hidden.setdefault(int(mb.group(1)), DenseLayerWeights())
                if layer.batch_norm is None:
                    layer.batch_norm = BatchNormWeights()
                setattr(layer.batch_norm, mb.group(3), v)
                continue
            if ml:
                setattr(dnn.logits, ml.group(1), v)
                continue
            if me:
                col = me.group(1)
                if len(v.shape) != 2:
                    unknown(v, f"embedding table of {col!r} is not 2-D")
                    continue
                split = _split_shared_name(col, cats)
                if split or col.endswith("_shared_embedding"):
                    # TF1 shared_embedding_columns: one table under the collection name
                    shared[col] = EmbeddingTable(col, split, True, v)
                else:
                    base = col[: -len("_embedding")] if col.endswith("_embedding") else col
                    dnn.embeddings[col] = EmbeddingTable(col, (base,), False, v)
                continue
        if "/" not in n and len(v.shape) == 2 and v.dtype.startswith("float"):
            if dnn is None:
                unknown(v, f"a top-level 2-D table (shared embedding?) in a {name} checkpoint")
                continue
            shared[n] = EmbeddingTable(n, _split_shared_name(n, cats), True, v)
            continue
        unknown(v, "no canned-Estimator naming rule matches it (see the module docstring)")

    if dnn is not None:
        ids = sorted(hidden)
        if ids != list(range(len(ids))):
            raise DataError(
                f"hidden layers {ids} of {name} are not numbered 0..{len(ids) - 1}",
                path=prefix,
                reason="estimator_checkpoint_mismatch",
            )
        dnn.hidden_layers = [hidden[i] for i in ids]
        if dnn.logits.kernel is None:
            raise DataError(
                f"no dnn/logits/kernel: is this the model_dir of a {name}? (its variables: "
                f"{', '.join(sorted(model)[:8])}...)",
                path=prefix,
                reason="estimator_checkpoint_mismatch",
            )
    if linear is not None and linear.bias is None:
        raise DataError(
            f"no {_LINEAR_B}: is this the model_dir of a {name}? (its variables: "
            f"{', '.join(sorted(model)[:8])}...)",
            path=prefix,
            reason="estimator_checkpoint_mismatch",
        )
    return EstimatorWeights(
        checkpoint=str(prefix),
        estimator=name,
        tf1=tf1,
        global_step=global_step,
        linear=linear,
        dnn=dnn,
        shared_embeddings=shared,
        optimizers=optimizers,
        variables=model,
        unrecognized=unrecognized,
    )
