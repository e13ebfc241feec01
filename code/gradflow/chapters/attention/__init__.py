"""The experiments of the chapter "Attention's own gradients" (``book/attention.md``)."""
