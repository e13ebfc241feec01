"""The experiments of the chapter "After GPT-2" (``book/after_gpt2.md``)."""
