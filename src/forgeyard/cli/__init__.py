"""The ``forgeyard`` command: one module per command group."""
