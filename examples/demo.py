"""LogME on scikit-learn's bundled data sets: raw features against a random-feature control.

A first look at the core while the ranking pipeline is built: on each data set, the real features
must score far above random features of the same shape.

    python examples/demo.py
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine

import hf_logme


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'dataset':<14}{'task':<16}{'n':>6}{'D':>5}{'LogME':>11}{'random':>11}{'+intercept':>12}")
    cases = [
        (load_iris, False),
        (load_wine, False),
        (load_breast_cancer, False),
        (load_digits, False),
        (load_diabetes, True),
    ]
    for loader, regression in cases:
        features, labels = loader(return_X_y=True)
        features = features.astype(np.float32)
        if regression:
            labels = (labels - labels.mean()) / labels.std()
        random = rng.standard_normal(features.shape).astype(np.float32)
        real = hf_logme.logme(features, labels, regression=regression)
        control = hf_logme.logme(random, labels, regression=regression)
        centred = hf_logme.logme(features, labels, regression=regression, intercept=True)
        name = loader.__name__.removeprefix("load_")
        task = "regression" if regression else f"{len(np.unique(labels))} classes"
        print(f"{name:<14}{task:<16}{len(labels):>6}{features.shape[1]:>5}"
              f"{real:>11.4f}{control:>11.4f}{centred:>12.4f}")


if __name__ == "__main__":
    main()
