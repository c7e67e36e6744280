"""The statistics behind the public API (private): arrays in, arrays out, never xarray.

``_moments`` (group moments, merged pairwise), ``_ranks`` (average ranks, exact U), ``_linear``
(OLS sums and limma's eBayes), ``_pvalues`` (t, F, normal tails in full precision), ``_scan``
(running extremes), ``_spline`` (R's smoothing spline, for Storey's π0, host only). Each is
written against ``xp`` (NumPy or CuPy); where NumPy cannot reach one pass over memory a compiled
twin sits in ``_cpu/`` and a CUDA one in ``_gpu/``, each held to the ``xp`` body by a test. This
package imports only ``cohortex._backend`` and ``cohortex._errors`` of cohortex
(tests/test_api.py checks it).
"""
