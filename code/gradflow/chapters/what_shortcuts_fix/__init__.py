"""The chapter "What shortcuts fix when gradients do not vanish" (``book/what_shortcuts_fix.md``):
shattered gradients, Jacobian spectra, training of well-initialised plain and residual networks."""

from . import spectra, training
from .landscape import Slices, landscape_slices
from .shattering import KINDS as SHATTERING_KINDS
from .shattering import ShatteringResult, correlation_summary, shattering, two_values
from .spectra import CONFIGS as SPECTRUM_CONFIGS
from .spectra import SpectrumConfig, SpectrumResult, jacobian_spectra, moments_summary
from .training import KINDS as TRAINING_KINDS
from .training import Training, final_losses, train_plain_and_residual

__all__ = [
    "SHATTERING_KINDS",
    "SPECTRUM_CONFIGS",
    "TRAINING_KINDS",
    "ShatteringResult",
    "Slices",
    "SpectrumConfig",
    "SpectrumResult",
    "Training",
    "correlation_summary",
    "final_losses",
    "jacobian_spectra",
    "landscape_slices",
    "moments_summary",
    "shattering",
    "spectra",
    "train_plain_and_residual",
    "training",
    "two_values",
]
