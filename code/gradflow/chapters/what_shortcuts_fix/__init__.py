"""The chapter "What shortcuts fix when gradients do not vanish" (``book/what_shortcuts_fix.md``):
shattered gradients, Jacobian spectra, training of well-initialised plain and residual networks."""

from . import spectra, training
from .landscape import SLICE_STUDY, Slices, landscape_slices, slices_from
from .shattering import KINDS as SHATTERING_KINDS
from .shattering import ShatteringResult, correlation_summary, shattering, two_values
from .spectra import CONFIGS as SPECTRUM_CONFIGS
from .spectra import SpectrumConfig, SpectrumResult, jacobian_spectra, moments_summary
from .training import (
    COMPARISON_STUDY,
    Training,
    paired_comparison,
    residual_against_plain,
    study_curves,
    study_finals,
    train_plain_and_residual,
)
from .training import KINDS as TRAINING_KINDS

__all__ = [
    "COMPARISON_STUDY",
    "SHATTERING_KINDS",
    "SLICE_STUDY",
    "SPECTRUM_CONFIGS",
    "TRAINING_KINDS",
    "ShatteringResult",
    "Slices",
    "SpectrumConfig",
    "SpectrumResult",
    "Training",
    "correlation_summary",
    "jacobian_spectra",
    "landscape_slices",
    "moments_summary",
    "paired_comparison",
    "residual_against_plain",
    "shattering",
    "slices_from",
    "spectra",
    "study_curves",
    "study_finals",
    "train_plain_and_residual",
    "training",
    "two_values",
]
