"""Numba kernels of the engine (like vectorbt's ``nb`` modules): plain arrays in, plain arrays out."""
