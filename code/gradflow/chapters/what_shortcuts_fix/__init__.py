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
