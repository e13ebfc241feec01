"""The experiments of the chapter "Normalisation" (``book/normalisation.md``): the normalisers
against PyTorch and LayerNorm's Jacobian (``parity``), BatchNorm's gradient explosion in plain
networks (``explosion``), normalisation inside a residual branch and SkipInit (``residual``),
RMSNorm against LayerNorm on the GPT's stream (``rms``), the explorable sweep
(``explorer``) and four questions readers ask (``practice``: BatchNorm's placement, LayerNorm in
transformers, weight decay on scale-invariant weights, LayerNorm's axis); its figures are in ``figures``."""

from .explorer import EXPLORER_DEPTHS, normaliser_explorer, residual_states
from .explosion import (
    explosion_by_activation,
    explosion_sweep,
    growth_rate,
    initialisation_independence,
    squared_gradient_norms,
    with_and_without_batch_norm,
)
from .parity import (
    PRE_LN_CONFIG,
    jacobian_check,
    pre_ln_gradients,
    pytorch_agreement,
    scale_invariance,
    what_each_removes,
)
from .practice import (
    PLACEMENTS,
    batch_norm_placement,
    decay_is_a_learning_rate,
    layer_norm_axes,
    padding_and_causality,
    placement_growth,
)
from .residual import (
    BRANCH_STUDY,
    KINDS,
    branch_curves,
    branch_log_ratio,
    stream_growth,
    train_branch_scalars,
)
from .rms import RMS_STUDY, before_and_after_training, stream_gaps

__all__ = [
    "BRANCH_STUDY",
    "EXPLORER_DEPTHS",
    "KINDS",
    "PLACEMENTS",
    "PRE_LN_CONFIG",
    "RMS_STUDY",
    "batch_norm_placement",
    "before_and_after_training",
    "branch_curves",
    "branch_log_ratio",
    "decay_is_a_learning_rate",
    "explosion_by_activation",
    "explosion_sweep",
    "growth_rate",
    "initialisation_independence",
    "jacobian_check",
    "layer_norm_axes",
    "normaliser_explorer",
    "padding_and_causality",
    "placement_growth",
    "pre_ln_gradients",
    "pytorch_agreement",
    "residual_states",
    "scale_invariance",
    "squared_gradient_norms",
    "stream_gaps",
    "stream_growth",
    "train_branch_scalars",
    "what_each_removes",
    "with_and_without_batch_norm",
]
