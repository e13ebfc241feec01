"""The book's chapters, one subpackage per chapter, named after the chapter's file.

``book/<chapter>.md`` imports ``gradflow.chapters.<chapter>`` (its experiments) and
``gradflow.chapters.<chapter>.figures`` (its figures); ``tests/test_<chapter>.py`` tests them.
Reusable parts live above, named by concept: ``gradflow.activations``, ``gradflow.networks``,
``gradflow.signal_propagation``, ``gradflow.probes``, ``gradflow.plotting``.
"""
