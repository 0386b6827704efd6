"""The lazy graph: nodes, the op table, shapes, dtypes, passes and kernel specs.

Imports only ``lazyfuse.config`` and ``lazyfuse.errors``; never codegen or runtime.
"""
