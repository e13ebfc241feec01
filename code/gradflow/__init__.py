"""gradflow: GELU, shortcut connections and vanishing gradients, measured.

The package behind the executable book. Chapters, tests and readers' notebooks import these names.

The top-level names are loaded lazily (PEP 562): ``import gradflow`` imports no submodule, and
``gradflow.GPT`` imports ``gradflow.gpt`` on first use. So a chapter loads exactly the modules it
names, and the book's build can tell from a chapter's imports which edits under ``code/`` must
re-execute it (``_ext/chapter_dependencies.py`` reads ``_EXPORTS`` below for that).
"""

#: Each public top-level name and the submodule that defines it.
_EXPORTS = {
    "GELU": "activations",
    "gelu": "activations",
    "gelu_derivative": "activations",
    "gelu_gate": "activations",
    "gelu_second_derivative": "activations",
    "ShortcutComparison": "experiments",
    "compare_shortcuts": "experiments",
    "format_gradient": "experiments",
    "approximation_error": "gelu_analysis",
    "monte_carlo_gelu": "gelu_analysis",
    "shape_facts": "gelu_analysis",
    "GPT": "gpt",
    "GPTConfig": "gpt",
    "parameter_count": "gpt",
    "gradient_profile": "gradient_stats",
    "gradient_sweep": "gradient_stats",
    "layer_gradient_means": "gradients",
    "DeepMLP": "mlp",
    "ExampleDeepNeuralNetwork": "models",
    "many_seed_comparison": "residual",
    "path_length_distribution": "residual",
    "train_depth_comparison": "residual",
    "with_projections": "residual",
    "predict_layers": "signal_propagation",
    "Table": "tables",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 (the keys of _EXPORTS, all strings)
__version__ = "0.1.0"


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
