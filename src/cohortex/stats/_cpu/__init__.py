"""Compiled CPU loops (numba) of the statistics whose NumPy form cannot reach the bound of one
pass over memory. Each has a twin: the ``xp`` reference it is tested against
(``stats/_moments.py``, ``stats/_ranks.py``) and, where one exists, its CUDA kernel.
"""
