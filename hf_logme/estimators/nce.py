"""NCE, Negative Conditional Entropy (Tran et al., "Transferability and Hardness of Supervised
Classification Tasks", ICCV 2019).

With z_i = argmax of the source model's logits for row i and the empirical joint
P(y, z) = #{i: y_i = y, z_i = z} / n,

    NCE = -H(Y | Z) = sum_{y, z} P(y, z) log( P(y, z) / P(z) )   (<= 0).

Consumes ``"source_predictions"``, only its joint counts over every row: O(K Z) memory, mergeable,
exact for any n; O(K Z) to compute. Invariant to permutations of the source classes and to any
monotone map of each row's logits. Classification only.
"""

from __future__ import annotations

import torch

from .base import register
from .leep import SourceEstimator


@register
class NCE(SourceEstimator):
    """Negative conditional entropy of the labels given the source model's predicted class.

    Args:
        regression: must be False.
        max_rows, seed: gather options of the shared source predictions (NCE uses all rows).

    Example:
        >>> import numpy as np
        >>> from hf_logme import score
        >>> logits = np.log([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7]])
        >>> score(logits, ["cat", "cat", "dog", "dog"], method="nce")
        0.0
    """

    name = "nce"

    def compute(self) -> float:
        _, _, hard = self._joints()
        joint = hard / hard.sum()
        marginal = joint.sum(0, keepdim=True)
        nonzero = joint > 0
        ratio = torch.where(nonzero, joint / marginal.clamp(min=torch.finfo(joint.dtype).tiny), 1.0)
        return float((joint * ratio.log()).sum())
