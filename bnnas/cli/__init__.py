"""The command-line layer: the ``bnnas`` entry point (main.py) with one module per command, and the flags,
data-dependent defaults, argument types and one-line error handling they share."""
