"""gradflow: GELU, shortcut connections and vanishing gradients, measured.

The package behind the executable book. Chapters, tests and readers' notebooks import these names.

Layout: the reusable parts are named by concept (``activations``, the registry of every activation;
``gated``, the gated linear units of today's feed-forward layers; ``networks`` (``mlp``,
``stacked``, ``gpt``); ``signal_propagation``, the mean-field theory; ``probes``, per-layer gradient
measurements; ``normalisation``, LayerNorm, RMSNorm and BatchNorm from their definitions, with
their Jacobians; ``tasks``, the small training tasks the chapters share; ``plotting``, the figures'
style; ``checks``, argument checks; ``book``, the chapters' shared helpers). ``tutorial`` reproduces
the tutorial the book
starts from. Each chapter's experiments and figures are in ``chapters/<chapter file name>/``.

The top-level names are loaded lazily (PEP 562): ``import gradflow`` imports no submodule, and
``gradflow.GPT`` imports ``gradflow.networks.gpt`` on first use. So a chapter loads exactly the
modules it names, and the book's build can tell from a chapter's imports which edits under
``code/`` must re-execute it (``_ext/chapter_dependencies.py`` reads ``_EXPORTS`` below for that).
"""

#: Each public top-level name and the submodule that defines it.
_EXPORTS = {
    "GELU": "activations",
    "gelu": "activations",
    "gelu_derivative": "activations",
    "gelu_gate": "activations",
    "gelu_second_derivative": "activations",
    "ShortcutComparison": "tutorial",
    "compare_shortcuts": "tutorial",
    "format_gradient": "tutorial",
    "ExampleDeepNeuralNetwork": "tutorial",
    "approximation_error": "chapters.gelu",
    "monte_carlo_gelu": "chapters.gelu",
    "shape_facts": "chapters.gelu",
    "GPT": "networks.gpt",
    "GPTConfig": "networks.gpt",
    "parameter_count": "networks.gpt",
    "deepnorm_constants": "networks.gpt",
    "GatedFeedForward": "gated",
    "gated_unit": "gated",
    "glu": "gated",
    "geglu": "gated",
    "swiglu": "gated",
    "matched_hidden_width": "gated",
    "DeepMLP": "networks.mlp",
    "StackedMLP": "networks.stacked",
    "gradient_profile": "probes",
    "layer_gradient_means": "probes",
    "gradient_sweep": "chapters.vanishing_gradients",
    "many_seed_comparison": "chapters.shortcut_connections",
    "path_length_distribution": "chapters.shortcut_connections",
    "train_depth_comparison": "chapters.shortcut_connections",
    "with_projections": "chapters.shortcut_connections",
    "predict_layers": "signal_propagation",
    "layer_norm": "normalisation",
    "rms_norm": "normalisation",
    "batch_norm": "normalisation",
    "layer_norm_jacobian": "normalisation",
    "Table": "tables",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 (the keys of _EXPORTS, all strings)
__version__ = "1.0.0"  # the book's version: pyproject.toml, CITATION.cff and each page's footer read it


def __getattr__(name: str):
    """Import a public name's submodule on first use, then keep the name in the namespace."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
