"""The synthetic demo market (memecoin-like paths, callers of planted skill), outside the core path.

The generator is :mod:`alertlab.demo.market`; the ``demo`` command is :mod:`alertlab.app.demo`.
"""
