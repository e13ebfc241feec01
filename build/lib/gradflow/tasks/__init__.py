"""The book's small training tasks, shared by the chapters that train networks: ``regression``, a
regression task for MLPs (the shortcut and normalisation chapters), and ``sequence``, a sequence
task for the small GPT with its training loop (the GPT and normalisation chapters). Importing this
package imports neither, so a chapter depends only on the task it uses."""
