"""The chapter "What shortcuts fix when gradients do not vanish" (``book/what_shortcuts_fix.md``):
shattered gradients, Jacobian spectra, training of well-initialised plain and residual networks."""

from .shattering import KINDS as SHATTERING_KINDS
from .shattering import ShatteringResult, correlation_summary, shattering, two_values

__all__ = [
    "SHATTERING_KINDS",
    "ShatteringResult",
    "correlation_summary",
    "shattering",
    "two_values",
]

from .spectra import CONFIGS as SPECTRUM_CONFIGS  # noqa: E402
from .spectra import SpectrumConfig, SpectrumResult, jacobian_spectra, moments_summary  # noqa: E402

__all__ += [
    "SPECTRUM_CONFIGS",
    "SpectrumConfig",
    "SpectrumResult",
    "jacobian_spectra",
    "moments_summary",
]

from .training import KINDS as TRAINING_KINDS  # noqa: E402
from .training import Training, final_losses, train_plain_and_residual  # noqa: E402

__all__ += ["TRAINING_KINDS", "Training", "final_losses", "train_plain_and_residual"]
