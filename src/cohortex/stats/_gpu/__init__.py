"""CuPy code and CUDA kernel launches of the statistics whose plain ``xp`` form is replaced on
a GPU; each kernel (``kernels/*.cu``) has a CPU twin in ``stats/_cpu`` and a test holding them
equal.
"""
