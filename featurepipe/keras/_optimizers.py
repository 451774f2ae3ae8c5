"""A Keras 3 optimizer that updates only the embedding rows a batch touches.

Keras 3's ``Adam``, ``Adagrad`` and ``Ftrl`` turn the sparse gradient of an
embedding table (``tf.IndexedSlices`` on the TensorFlow backend) into a dense
update of every row and of every row's moments, each step: with tens of millions
of embedding parameters that update, not the model, bounds the training speed.
The Estimator's canned models updated only the rows a batch looked up.
:class:`SparseOptimizer` does the same: on the TensorFlow backend a sparse
gradient updates only its rows (and their slots), "lazily" as ``LazyAdam`` did;
dense gradients (and every gradient on the JAX and torch backends) take the
usual dense update.

It also gives the two parts of a wide-and-deep model separate algorithms and
learning rates, as ``DNNLinearCombinedClassifier`` had (``linear_optimizer`` /
``dnn_optimizer``): variables under the layers named in ``wide_layers`` use
``wide_algorithm`` and ``wide_learning_rate``, the rest use ``algorithm`` and
``learning_rate``. One optimizer keeps the model an ordinary Keras model:
``compile``, ``fit``, callbacks and ``.keras`` saving need nothing special.

Algorithms: ``"sgd"``, ``"adagrad"``, ``"adam"`` (lazy: untouched rows keep
their moments, as ``LazyAdam``) and ``"ftrl"`` (FTRL-Proximal with L1 / L2, as
``tf.compat.v1.train.FtrlOptimizer`` with ``learning_rate_power=-0.5``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from featurepipe.errors import ConfigError

__all__ = ["ALGORITHMS", "SparseOptimizer"]

ALGORITHMS = ("sgd", "adagrad", "adam", "ftrl")
_SLOTS = {"sgd": (), "adagrad": ("accumulator",), "adam": ("m", "v"), "ftrl": ("accum", "linear")}


@keras.saving.register_keras_serializable(package="featurepipe")
class SparseOptimizer(keras.optimizers.Optimizer):
    """Row-sparse SGD / Adagrad / lazy Adam / FTRL, with a separate rule for the wide part.

    Args:
        algorithm: the update rule of the (deep) variables: ``"sgd"``,
            ``"adagrad"``, ``"adam"`` or ``"ftrl"``. Defaults to `"adam"`.
        learning_rate: their learning rate (a float or a Keras schedule).
            Defaults to `0.001`.
        wide_algorithm: the rule of the variables under ``wide_layers``; `None`
            uses ``algorithm``. Defaults to `None`.
        wide_learning_rate: their learning rate (a float); `None` uses
            ``learning_rate``. Defaults to `None`.
        wide_layers: names of the layers whose variables are "wide" (the first
            part of a variable's ``path``). Defaults to `("linear",)`.
        beta_1: Adam's first-moment decay. Defaults to `0.9`.
        beta_2: Adam's second-moment decay. Defaults to `0.999`.
        epsilon: Adam's / Adagrad's epsilon. Defaults to `1e-7`.
        initial_accumulator_value: start of the Adagrad / FTRL accumulators.
            Defaults to `0.1` (TensorFlow's default).
        l1: FTRL's L1 regularization strength. Defaults to `0.0`.
        l2: FTRL's L2 regularization strength. Defaults to `0.0`.
        **kwargs: base optimizer arguments (``name``, ``clipnorm``, ...).

    Raises:
        ConfigError: for an unknown algorithm or a negative strength.

    Examples:
        >>> opt = SparseOptimizer("adagrad", 0.05, wide_algorithm="ftrl", wide_learning_rate=0.2)
        >>> SparseOptimizer.from_config(opt.get_config()).wide_algorithm
        'ftrl'
    """

    def __init__(
        self,
        algorithm: str = "adam",
        learning_rate: Any = 0.001,
        *,
        wide_algorithm: str | None = None,
        wide_learning_rate: float | None = None,
        wide_layers: Sequence[str] = ("linear",),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        initial_accumulator_value: float = 0.1,
        l1: float = 0.0,
        l2: float = 0.0,
        name: str = "sparse_optimizer",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        for arg, value in (("algorithm", algorithm), ("wide_algorithm", wide_algorithm)):
            if value is not None and value not in ALGORITHMS:
                raise ConfigError(
                    f"Unknown value for `{arg}` of SparseOptimizer. Allowed values are: "
                    f"{ALGORITHMS}. Received: {arg}={value!r}"
                )
        for arg, number in (("l1", l1), ("l2", l2), ("epsilon", epsilon)):
            if number < 0:
                raise ConfigError(f"`{arg}` must be >= 0. Received: {arg}={number}")
        if wide_learning_rate is not None and wide_learning_rate <= 0:
            raise ConfigError(
                "`wide_learning_rate` must be > 0. "
                f"Received: wide_learning_rate={wide_learning_rate}"
            )
        self.algorithm = algorithm
        self.wide_algorithm = wide_algorithm
        self.wide_learning_rate = wide_learning_rate
        self.wide_layers = tuple(wide_layers)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.initial_accumulator_value = initial_accumulator_value
        self.l1 = l1
        self.l2 = l2
        self._slots: list[dict[str, Any]] = []

    def _is_wide(self, variable: Any) -> bool:
        path = str(getattr(variable, "path", getattr(variable, "name", "")))
        return path.split("/", 1)[0] in self.wide_layers

    def _rule(self, variable: Any) -> str:
        if self.wide_algorithm is not None and self._is_wide(variable):
            return self.wide_algorithm
        return self.algorithm

    def build(self, var_list: list[Any]) -> None:
        """Creates the slot variables of each model variable for its rule."""
        if self.built:
            return
        super().build(var_list)
        self._slots = []
        for variable in var_list:
            rule = self._rule(variable)
            slots: dict[str, Any] = {}
            for slot in _SLOTS[rule]:
                init = (
                    keras.initializers.Constant(self.initial_accumulator_value)
                    if slot in ("accumulator", "accum")
                    else "zeros"
                )
                slots[slot] = self.add_variable_from_reference(variable, slot, initializer=init)
            self._slots.append(slots)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Updates one variable: only the gradient's rows when it is row-sparse."""
        rule = self._rule(variable)
        if self.wide_learning_rate is not None and self._is_wide(variable):
            learning_rate = self.wide_learning_rate
        lr = ops.cast(learning_rate, variable.dtype)
        slots = self._slots[self._get_variable_index(variable)]
        sparse = _as_rows(gradient)
        if sparse is None:
            gradient = ops.cast(gradient, variable.dtype)
            new_var, new_slots = self._rule_update(
                rule, gradient, ops.convert_to_tensor(variable), slots, lr, None
            )
            self.assign(variable, new_var)
            for key, value in new_slots.items():
                self.assign(slots[key], value)
            return
        import tensorflow as tf

        indices, values = sparse
        values = tf.cast(values, variable.dtype)
        new_var, new_slots = self._rule_update(rule, values, variable, slots, lr, indices)
        _scatter(variable, indices, new_var)
        for key, value in new_slots.items():
            _scatter(slots[key], indices, value)

    def _rule_update(
        self, rule: str, g: Any, var: Any, slots: dict[str, Any], lr: Any, rows: Any
    ) -> tuple[Any, dict[str, Any]]:
        """New values of the variable and its slots (of ``rows`` only, when given)."""

        def read(v: Any) -> Any:
            if rows is None:
                return ops.convert_to_tensor(v)
            import tensorflow as tf

            return tf.gather(_native(v), rows)

        w = read(var)
        if rule == "sgd":
            return w - lr * g, {}
        if rule == "adagrad":
            acc = read(slots["accumulator"]) + g * g
            return w - lr * g / (ops.sqrt(acc) + self.epsilon), {"accumulator": acc}
        if rule == "adam":
            step = ops.cast(self.iterations + 1, w.dtype)
            b1 = ops.cast(self.beta_1, w.dtype)
            b2 = ops.cast(self.beta_2, w.dtype)
            alpha = lr * ops.sqrt(1 - ops.power(b2, step)) / (1 - ops.power(b1, step))
            m = read(slots["m"]) * b1 + g * (1 - b1)
            v = read(slots["v"]) * b2 + g * g * (1 - b2)
            return w - alpha * m / (ops.sqrt(v) + self.epsilon), {"m": m, "v": v}
        # FTRL-Proximal, learning_rate_power = -0.5.
        acc = read(slots["accum"])
        new_acc = acc + g * g
        linear = read(slots["linear"]) + g - (ops.sqrt(new_acc) - ops.sqrt(acc)) / lr * w
        quadratic = ops.sqrt(new_acc) / lr + 2.0 * self.l2
        shrunk = (ops.sign(linear) * self.l1 - linear) / quadratic
        new_w = ops.where(ops.abs(linear) > self.l1, shrunk, ops.zeros_like(shrunk))
        return new_w, {"accum": new_acc, "linear": linear}

    def get_config(self) -> dict[str, Any]:
        """The optimizer config (JSON-able constructor arguments)."""
        config: dict[str, Any] = super().get_config()
        config.update(
            {
                "algorithm": self.algorithm,
                "wide_algorithm": self.wide_algorithm,
                "wide_learning_rate": self.wide_learning_rate,
                "wide_layers": list(self.wide_layers),
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1": self.l1,
                "l2": self.l2,
            }
        )
        return config


def _as_rows(gradient: Any) -> tuple[Any, Any] | None:
    """``(unique row indices, summed row gradients)`` of a ``tf.IndexedSlices``, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not isinstance(gradient, tf.IndexedSlices):
        return None
    # A row looked up twice in a batch has two slices; sum them so each row updates once.
    rows, positions = tf.unique(tf.cast(gradient.indices, tf.int64))
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
    return rows, values


def _scatter(variable: Any, rows: Any, values: Any) -> None:
    import tensorflow as tf

    target = _native(variable)
    target.scatter_update(tf.IndexedSlices(values, rows, dense_shape=tf.shape(target)))


def _native(variable: Any) -> Any:
    """The backend variable of a Keras variable (update_step gets either)."""
    return variable.value if isinstance(variable, keras.Variable) else variable
