"""Shortcut (residual) connections, measured: why they help, where they fail, how they train.

The experiments behind the chapter "Shortcut connections" (``book/shortcut_connections.md``), one
module per part of the chapter. Each returns plain data (a pandas DataFrame or a dataclass of them)
and never prints; ``figures`` draws them.

1. **The seed's table, over many seeds** (``seed_table``). ``many_seed_comparison`` repeats the
   seed notebook's experiment for thousands of seeds in one batched pass and reports, per seed, the
   first- and last-layer gradients of both networks, their outputs y and dL/dy, and the ratio of
   first-layer gradients raw and divided by |dL/dy| (every gradient of a one-output network is
   dL/dy times the gradient of y, so the second ratio compares how gradients travel, not how large
   the loss happens to be).
2. **The shape check and projection shortcuts** (``projections``). ``shortcut_layout`` shows where
   the seed's check ``x.shape == layer_output.shape`` keeps a shortcut; ``with_projections`` adds
   He et al. (2016, "Deep residual learning", Eq. 2) projection shortcuts y = F(x) + W_s x where it
   drops one.
3. **Why it works** (``identity``). For identity shortcuts x_{l+1} = x_l + F(x_l), He et al. (2016,
   "Identity mappings", Eq. 5) write dL/dx_l = dL/dx_L (I + d/dx_l sum_{i=l}^{L-1} F(x_i));
   ``identity_decomposition`` measures both terms. With shortcuts scaled by lambda (their section
   3, Eqs. 6 to 8) the identity term becomes lambda^(L-l): ``lambda_scaling``.
4. **Paths** (``paths``). Unrolled, n residual blocks are 2^n paths, C(n, k) of them through k
   branches (Veit et al. 2016): ``path_length_distribution``.
   ``path_gradient_magnitudes`` measures the gradient each path length carries (their Fig. 6b-c).
5. **Variance growth and its fixes** (``stream``). ``residual_stream_growth`` measures the variance
   of the residual stream with and without the 1/sqrt(N) scaling of each branch's last layer of
   GPT-2's paper (Radford et al. 2019, section 2.3) and ReZero's alpha = 0 (Bachlechner et al.
   2020).
6. **Training** (``training``). ``train_depth_comparison`` trains plain and residual MLPs, with and
   without BatchNorm, of several depths on a small regression task (He et al. 2016, Fig. 1 in
   miniature), all seeds and kinds of one depth in one batched model
   (``gradflow.networks.stacked.StackedMLP``), and returns the loss curves.

ReZero (``rezero_``) and projection shortcuts (``with_projections``) use the extension points of
``gradflow.networks.mlp.DeepMLP`` (``Block.branch_scale``, ``Block.shortcut``) without changing
that module.
"""

from .identity import (
    EXPLORER_LAMBDAS,
    identity_decomposition,
    lambda_explorer,
    lambda_scaling,
    lambda_summary,
)
from .paths import (
    EXPLORER_BLOCKS,
    path_experiment,
    path_gradient,
    path_gradient_magnitudes,
    path_length_distribution,
    path_length_explorer,
    path_length_share,
)
from .projections import projection_comparison, shortcut_layout, with_projections, without_shortcuts
from .seed_table import many_seed_comparison, ratio_summary
from .stream import (
    NORMS,
    SCALINGS,
    ResidualStack,
    residual_stream_growth,
    rezero_,
    rezero_gradients,
    stream_summary,
)
from .training import (
    COMPARISON_STUDY,
    KINDS,
    RegressionTask,
    TrainingComparison,
    final_losses,
    log_ratio_comparison,
    make_regression_task,
    study_curves,
    train_depth_comparison,
)

__all__ = [
    "COMPARISON_STUDY",
    "EXPLORER_BLOCKS",
    "EXPLORER_LAMBDAS",
    "KINDS",
    "NORMS",
    "SCALINGS",
    "RegressionTask",
    "ResidualStack",
    "TrainingComparison",
    "final_losses",
    "identity_decomposition",
    "lambda_explorer",
    "lambda_scaling",
    "lambda_summary",
    "log_ratio_comparison",
    "make_regression_task",
    "many_seed_comparison",
    "path_experiment",
    "path_gradient",
    "path_gradient_magnitudes",
    "path_length_distribution",
    "path_length_explorer",
    "path_length_share",
    "projection_comparison",
    "ratio_summary",
    "residual_stream_growth",
    "rezero_",
    "rezero_gradients",
    "shortcut_layout",
    "stream_summary",
    "study_curves",
    "train_depth_comparison",
    "with_projections",
    "without_shortcuts",
]
