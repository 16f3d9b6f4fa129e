"""Subcommands of the ``newsalpha`` CLI, one module each (see :mod:`newsalpha.cli`)."""
