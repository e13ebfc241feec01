"""The networks the book measures: ``mlp`` (``DeepMLP``, one configurable deep MLP), ``stacked``
(many such MLPs at once, batched) and ``gpt`` (a small GPT-2). The tutorial's own network,
``ExampleDeepNeuralNetwork``, is in ``gradflow.tutorial``."""
