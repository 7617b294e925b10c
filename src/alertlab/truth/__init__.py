"""The truth layer: what happened after each call (path metrics) and which callers are worth following."""
