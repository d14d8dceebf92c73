"""LogME as a Hugging Face ``evaluate`` metric.

``evaluate.load("logme")`` (after ``hf-logme metric install``), ``evaluate.load("NS/logme")`` (a
Space made by ``hf-logme metric push``) and ``evaluate.load("path/to/metric_card/logme")`` all
load :class:`Logme`. Predictions are per-example feature vectors, references the labels; configs
``default`` (class labels), ``regression`` (float targets) and ``multilabel`` (0/1 lists).

The texts here (``DESCRIPTION``, ``INPUTS``, ``OUTPUT``, ``EXAMPLES``, ``CITATION``) are the single
source of both the module's ``inputs_description`` (what ``help(metric.compute)`` shows) and the
metric card rendered by :mod:`hf_logme.metric_space`; the tests doctest both.

Speed: evaluate writes every ``add_batch`` to an Arrow file and reads everything back in
``compute``. Its generic path turns each feature vector into a Python list on the way in and back
into Python floats on the way out, ~12x the cost of LogME itself for 20000 x 768 features. Here
each batch is validated and written as one contiguous float32 Arrow list array (``_BatchFeatures``)
and read back as Arrow arrays, whose stored batches ``_compute`` folds into one streaming
:class:`~hf_logme.LogME` without copying them.
"""

from __future__ import annotations

import textwrap
from typing import Any

import evaluate
import numpy as np
import pyarrow as pa
import torch
from datasets import Features, List, Value

from .estimators import LogME
from .estimators._labels import _native
from .estimators._validation import (
    as_class_labels,
    as_feature_tensor,
    as_regression_targets,
    check_bool,
)
from .estimators.logme import DEFAULT_OPTIONS

CONFIGS = ("default", "regression", "multilabel")

DESCRIPTION = (
    "LogME (You et al., ICML 2021; JMLR 2022) scores how well a pre-trained model's frozen "
    "features predict a task's labels, before any fine-tuning: the log of the maximum Bayesian "
    "evidence of the labels under a linear model on the features, per example. Score each "
    "candidate model's features on the same labelled data and fine-tune the one with the highest "
    "LogME."
)

INPUTS = {
    "predictions": (
        "the features a model gives each example: a list of equal-length float vectors, or an "
        "(n_examples, n_features) numpy array or torch tensor (e.g. the pooled last hidden "
        "state). Stored as float32."
    ),
    "references": (
        "one label per example. `default` config: class labels, int, bool or string (any values, "
        "not necessarily 0..K-1). `regression`: a float target. `multilabel`: a list of 0/1 "
        "flags, one per label, the same length for every example."
    ),
    "intercept": (
        "(bool, default True) integrate out a per-target intercept, i.e. centre features and "
        "targets: mean-pooled transformer states share a large common offset that the papers' "
        "model counts against a model. The default of every hf-logme entry point (hf-logme "
        "rank, select_checkpoint, the Trainer callback, hf-logme score)."
    ),
    "prior": (
        "(float or None, default 2.0) pseudo-observations of a weak prior on the noise "
        "precision: the small-sample LogME, finite for any number of examples (duplicates "
        "included) and within O(1/n^2) of the exact value once there are many more examples "
        "than features; None is the exact maximum evidence. `intercept=False, prior=None` is "
        "the papers' model."
    ),
}

OUTPUT = (
    "`logme` (float): the log of the maximum evidence of the references given the predictions, "
    "divided by the number of examples and averaged over targets (one per class, per label "
    "column, or the single regression target); by default LogME with intercept and "
    "small-sample prior 2, the variant hf-logme rank uses and names. Any real number: higher "
    "predicts better accuracy after fine-tuning, and only differences between models scored on "
    "the same examples with the same options mean anything."
)

# (title, doctest) pairs: each block is self-contained.
EXAMPLES = (
    (
        (
            "Two models, the same six labelled examples: model A's features separate the "
            "classes, model B's do not."
        ),
        """\
>>> import evaluate
>>> logme = evaluate.load("logme")
>>> labels = ["cat", "cat", "cat", "dog", "dog", "dog"]
>>> model_a = [[1.0, 0.1], [0.9, 0.0], [1.1, -0.1], [0.1, 1.0], [-0.1, 0.9], [0.0, 1.1]]
>>> model_b = [[0.3, 1.0], [-0.2, 0.8], [0.1, -1.1], [0.2, 0.9], [-0.3, -1.0], [0.0, 1.2]]
>>> round(logme.compute(predictions=model_a, references=labels)["logme"], 4)
-0.193
>>> round(logme.compute(predictions=model_b, references=labels)["logme"], 4)
-0.817""",
    ),
    (
        "The papers' model (no intercept, exact maximum evidence) on regression targets.",
        """\
>>> import evaluate
>>> logme = evaluate.load("logme", "regression")
>>> features = [[0.1, 1.0], [0.4, 0.9], [0.8, 1.1], [1.2, 0.8], [1.5, 1.0], [2.1, 0.9]]
>>> prices = [1.2, 1.9, 2.8, 3.5, 4.1, 5.3]
>>> result = logme.compute(predictions=features, references=prices, intercept=False, prior=None)
>>> round(result["logme"], 4)
-0.3562""",
    ),
    (
        "Multi-label: a 0/1 flag per label and example.",
        """\
>>> import evaluate
>>> logme = evaluate.load("logme", "multilabel")
>>> features = [[1.0, 0.1], [0.9, 1.0], [0.1, 1.1], [1.1, 0.9], [0.0, 0.2], [0.2, 1.0]]
>>> flags = [[1, 0], [1, 1], [0, 1], [1, 1], [0, 0], [0, 1]]
>>> round(logme.compute(predictions=features, references=flags)["logme"], 4)
-0.426""",
    ),
    (
        "Batch by batch, as in an evaluation loop (each batch here: 32 examples, 16 features).",
        """\
>>> import evaluate
>>> import numpy as np
>>> logme = evaluate.load("logme")
>>> rng = np.random.default_rng(0)
>>> for _ in range(4):
...     labels = rng.integers(0, 3, size=32)
...     features = rng.normal(size=(32, 16)) + 2.0 * np.eye(3, 16)[labels]  # your model's outputs
...     logme.add_batch(predictions=features, references=labels)
>>> round(logme.compute()["logme"], 4)
-0.3648""",
    ),
)

CITATION = """\
@inproceedings{you2021logme,
  title     = {LogME: Practical Assessment of Pre-trained Models for Transfer Learning},
  author    = {You, Kaichao and Liu, Yong and Wang, Jianmin and Long, Mingsheng},
  booktitle = {Proceedings of the 38th International Conference on Machine Learning (ICML)},
  series    = {Proceedings of Machine Learning Research},
  volume    = {139},
  year      = {2021},
  url       = {https://proceedings.mlr.press/v139/you21b.html}
}

@article{you2022ranking,
  title   = {Ranking and Tuning Pre-trained Models: A New Paradigm for Exploiting Model Hubs},
  author  = {You, Kaichao and Liu, Yong and Zhang, Ziyang and Wang, Jianmin and
             Jordan, Michael I. and Long, Mingsheng},
  journal = {Journal of Machine Learning Research},
  volume  = {23},
  number  = {209},
  pages   = {1--47},
  year    = {2022},
  url     = {https://jmlr.org/papers/v23/21-1251.html}
}"""


def _inputs_description() -> str:
    """Args / Returns / Examples in the docstring layout evaluate appends to ``compute``'s help."""

    def wrap(text: str) -> str:
        return textwrap.fill(text, 96, initial_indent="    ", subsequent_indent="        ")

    args = "\n".join(wrap(f"{name}: {text}") for name, text in INPUTS.items())
    examples = "\n\n".join(
        f"{wrap(title)}\n\n{textwrap.indent(code, '    ')}" for title, code in EXAMPLES
    )
    return f"\nArgs:\n{args}\n\nReturns:\n{wrap(OUTPUT)}\n\nExamples:\n\n{examples}\n"


class _BatchFeatures(Features):
    """The input schema, encoding whole batches as contiguous Arrow arrays.

    evaluate calls ``encode_batch`` on every ``add_batch`` and writes what it returns; arrays of
    exactly the schema's types are written without conversion. The batch was validated by
    :meth:`Logme.add_batch`, so this only converts.
    """

    def encode_batch(self, batch: dict[str, Any]) -> dict[str, pa.Array]:
        if set(batch) != set(self):
            raise ValueError(f"Column mismatch between batch {set(batch)} and features {set(self)}")
        references, feature = np.asarray(batch["references"]), self["references"]
        if isinstance(feature, List):  # multilabel: (n, k) 0/1 flags
            encoded = _list_array(references, feature.feature.pa_type)
        elif feature.dtype == "string":
            encoded = pa.array(references.tolist(), pa.string())
        else:  # int64 class labels or float64 regression targets
            encoded = pa.array(references, feature.pa_type)
        predictions = _list_array(
            np.asarray(batch["predictions"]), self["predictions"].feature.pa_type
        )
        return {"predictions": predictions, "references": encoded}


def _feature_rows(predictions: Any) -> np.ndarray:
    """A batch of predictions as a validated (n, D) float32 array."""
    if isinstance(predictions, torch.Tensor):
        predictions = predictions.detach().to("cpu", torch.float32).numpy()
    elif (
        isinstance(predictions, (list, tuple))
        and predictions
        and isinstance(predictions[0], torch.Tensor)
    ):
        predictions = torch.stack(list(predictions)).detach().to("cpu", torch.float32).numpy()
    try:
        array = np.asarray(predictions)
    except ValueError:  # rows of different lengths
        lengths = sorted({len(row) for row in predictions})
        raise ValueError(
            f"predictions are feature vectors of different lengths {lengths[:5]}; every example "
            f"needs the same number of features (the same model, layer and pooling)."
        ) from None
    if array.dtype.kind in "fiub":
        with np.errstate(over="ignore"):  # values beyond float32 become inf: reported just below
            array = array.astype(np.float32, copy=False)
    return as_feature_tensor(array, name="predictions").numpy()


def _list_array(rows: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    """(n, k) array -> Arrow list array of n rows (sharing the array's memory if of value_type)."""
    n, width = rows.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    values = pa.array(np.ascontiguousarray(rows).reshape(-1), value_type)
    return pa.ListArray.from_arrays(offsets, values)


def _class_labels(references: Any, n_rows: int) -> np.ndarray:
    array = (
        references.detach().cpu().numpy()
        if isinstance(references, torch.Tensor)
        else np.asarray(references)
    )
    if array.ndim == 2 and array.shape[1] > 1:
        raise ValueError(
            f"references has shape {array.shape}: one class label per example is expected. For 0/1 "
            f"label lists load the 'multilabel' config: evaluate.load('logme', 'multilabel')."
        )
    if (
        array.dtype.kind == "f"
        and np.isfinite(array).all()
        and not np.array_equal(array, np.round(array))
    ):
        example = _native(array[array != np.round(array)][0])
        raise ValueError(
            f"references are floats that are not integers (e.g. {example!r}), so they are not "
            f"class labels. For continuous targets load the 'regression' config: "
            f"evaluate.load('logme', 'regression')."
        )
    return as_class_labels(array, n_rows, name="references")


def _regression_targets(references: Any, n_rows: int) -> torch.Tensor:
    targets = as_regression_targets(references, n_rows, name="references")
    if targets.shape[1] != 1:
        raise ValueError(
            f"references has {targets.shape[1]} values per example; the 'regression' config takes "
            f"one float target per example. For 0/1 label lists use the 'multilabel' config; for "
            f"several continuous targets use hf_logme.logme(features, targets, regression=True)."
        )
    return targets


def _multilabel_flags(references: Any, n_rows: int) -> np.ndarray:
    if not isinstance(references, torch.Tensor):
        try:
            references = np.asarray(references)
        except ValueError:
            raise ValueError(
                "references are 0/1 lists of different lengths; every example needs one flag per "
                "label, the same labels for all."
            ) from None
    flags = as_regression_targets(references, n_rows, name="references").numpy()
    if not np.isin(flags, (0.0, 1.0)).all():
        bad = _native(flags[~np.isin(flags, (0.0, 1.0))][0])
        raise ValueError(
            f"multilabel references must be 0/1 flags; got {bad!r}. For continuous targets load "
            f"the 'regression' config."
        )
    return flags.astype(np.int8)


def _list_rows(array: pa.Array, name: str, width: int | None = None) -> np.ndarray:
    """Arrow list array -> (n, width) numpy array (zero-copy for float32 without nulls).

    ``width`` is the row length seen so far; rows of another length raise, naming the lengths.
    """
    lengths = np.unique(array.value_lengths().to_numpy(zero_copy_only=False))
    if width is not None:
        lengths = np.union1d(lengths, [width])
    if len(lengths) > 1:
        raise ValueError(
            f"{name} vectors have different lengths across batches {lengths[:5].tolist()}; every "
            f"example needs the same length (for predictions: the same model, layer and pooling)."
        )
    return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), int(lengths[0]))


def _column_array(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """A whole column as evaluate reads it back (Arrow) -> numpy; list columns as a 2-D array."""
    array = column.combine_chunks()
    if pa.types.is_list(array.type):
        return _list_rows(array, name)
    return array.to_numpy(zero_copy_only=False)


class Logme(evaluate.Metric):
    """The LogME metric (its class name gives ``metric.name == "logme"``).

    Load it with ``evaluate.load``; ``config_name`` is one of ``"default"`` (class labels),
    ``"regression"`` (one float target per example) or ``"multilabel"`` (0/1 lists).
    ``compute(predictions=..., references=..., intercept=True, prior=2.0)`` returns
    ``{"logme": float}``, equal to ``hf_logme.logme(..., intercept=intercept, prior=prior)`` on
    the same float32 features (see ``inputs_description``): by default the LogME rankings use,
    ``intercept=False, prior=None`` for the papers' model.
    Multi-process evaluation (``num_process``, ``process_id``) works as for any evaluate metric:
    process 0 computes on every process's examples.
    """

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in CONFIGS:
            raise ValueError(
                f"config_name must be one of {list(CONFIGS)}; got {self.config_name!r}."
            )
        predictions = List(Value("float32"))
        if self.config_name == "default":
            # evaluate picks the first schema that encodes the first example: str, else int.
            features: Any = [
                _BatchFeatures({"predictions": predictions, "references": Value(kind)})
                for kind in ("string", "int64")
            ]
        else:
            references = (
                Value("float64") if self.config_name == "regression" else List(Value("int8"))
            )
            features = _BatchFeatures({"predictions": predictions, "references": references})
        info = evaluate.MetricInfo(
            description=DESCRIPTION,
            citation=CITATION,
            inputs_description=_inputs_description(),
            features=features,
            homepage="https://github.com/thuml/LogME",
            reference_urls=[
                "https://proceedings.mlr.press/v139/you21b.html",
                "https://jmlr.org/papers/v23/21-1251.html",
            ],
        )
        # Read columns back as Arrow arrays (converted exactly, _compute): evaluate's
        # default gives Python lists, and the "numpy" format casts float64 targets to float32.
        # MetricInfo accepts a format only for Value features when constructed, hence after.
        info.format = "arrow"
        return info

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of examples, validated first: a bad batch fails in this call."""
        if predictions is not None and references is not None:
            predictions = _feature_rows(predictions)
            references = self._references(references, len(predictions))
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one example, validated as a batch of one."""
        if prediction is not None and reference is not None:
            prediction = _feature_rows([prediction])[0]
            reference = self._references([reference], 1)[0]
        super().add(prediction=prediction, reference=reference, **kwargs)

    def _references(self, references: Any, n_rows: int) -> Any:
        """Validated references of the config: class labels, float targets or 0/1 flags."""
        if self.config_name == "default":
            labels = _class_labels(references, n_rows)
            schema = self.selected_feature_format  # evaluate's: fixed by the first batch
            first_int = schema is not None and schema["references"].dtype == "int64"
            if schema is not None and (labels.dtype.kind in "iub") != first_int:
                raise ValueError(
                    f"references mix kinds: these are {labels.dtype} labels (e.g. "
                    f"{_native(labels[0])!r}) but the first batch held "
                    f"{'integers' if first_int else 'strings'}. Pass labels of one kind: all int "
                    f"or all str."
                )
            return labels
        if self.config_name == "regression":
            return _regression_targets(references, n_rows)[:, 0].numpy()
        return _multilabel_flags(references, n_rows)

    def _compute(
        self,
        predictions: Any,
        references: Any,
        intercept: bool = DEFAULT_OPTIONS["intercept"],
        prior: float | None = DEFAULT_OPTIONS["prior"],
    ) -> dict[str, float]:
        intercept = check_bool("intercept", intercept)
        # Options fail before the stored examples are read back.
        LogME(intercept=intercept, prior=prior)
        labels = self._references(_column_array(references, "references"), len(predictions))
        estimator = LogME(
            regression=self.config_name != "default", intercept=intercept, prior=prior
        )
        # Fold the stored batches in one by one: no concatenated copy of the features.
        start, width = 0, None
        for chunk in predictions.chunks:
            if len(chunk) == 0:
                continue
            rows = _list_rows(chunk, "predictions", width)
            width, stop = rows.shape[1], start + len(rows)
            estimator.update(as_feature_tensor(rows, name="predictions"), labels[start:stop])
            start = stop
        return {"logme": estimator.compute()}
