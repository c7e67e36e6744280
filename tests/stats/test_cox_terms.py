"""The Cox terms' compiled CPU twin equals the xp body (which tests/survival holds to R)."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex.stats._cox import RiskSets, cox_newton, cox_terms


def _problem(seed: int, tied: bool, strata: bool, missing: bool):
    rng = np.random.default_rng(seed)
    n, genes = 300, 12
    time = np.ceil(rng.exponential(10, n)) if tied else rng.exponential(10, n)
    event = (rng.random(n) < 0.6).astype(float)
    codes = rng.integers(0, 3, n) if strata else None
    risk = RiskSets.build(time, event, codes)
    x = rng.normal(size=(n, genes))[risk.order]
    if missing:
        x[rng.random(x.shape) < 0.1] = np.nan
    valid = ~np.isnan(x)
    z = rng.normal(size=(n, 2))[risk.order]
    variables = [np.where(valid, x, 0.0), z[:, :1], z[:, 1:]]
    beta = rng.normal(0, 0.3, (genes, 3))
    return variables, valid, beta, risk


@pytest.mark.parametrize("efron", [True, False])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("strata", [True, False])
@pytest.mark.parametrize("missing", [True, False])
def test_compiled_terms_equal_the_xp_body(efron, tied, strata, missing):
    variables, valid, beta, risk = _problem(20, tied, strata, missing)
    # with the gene, the gene alone (its own kernel) and the covariates alone
    for used in (variables, variables[:1], variables[1:]):
        b = beta[:, : len(used)]
        compiled = cox_terms(used, valid, b, risk, efron)
        body = cox_terms(used, valid, b, risk, efron, compiled=False)
        for got, expected in zip(compiled, body, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("efron", [True, False])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("strata", [True, False])
def test_one_model_by_matrix_products_equals_the_kernels(efron, tied, strata):
    """One model of eight variables (fit_cox's): its terms by two matrix products equal the
    compiled kernel's and the xp body's, ties and strata too, uncentred values included."""
    rng = np.random.default_rng(5)
    n = 400
    time = np.ceil(rng.exponential(10, n)) if tied else rng.exponential(10, n)
    event = (rng.random(n) < 0.6).astype(float)
    risk = RiskSets.build(time, event, rng.integers(0, 3, n) if strata else None)
    x = (rng.normal(size=(n, 8)) + np.arange(8) * 3.0)[risk.order]
    variables = [x[:, j : j + 1] for j in range(8)]
    valid = np.ones((n, 1), dtype=bool)
    beta = rng.normal(0, 0.2, (1, 8))
    fast = cox_terms(variables, valid, beta, risk, efron, one_model=True)
    for reference in (
        cox_terms(variables, valid, beta, risk, efron),
        cox_terms(variables, valid, beta, risk, efron, compiled=False),
    ):
        for got, expected in zip(fast, reference, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_newton_converges_alike_on_both():
    variables, valid, _, risk = _problem(21, True, True, True)
    start = np.zeros((valid.shape[1], 3))
    fit = cox_newton(variables, valid, start, risk, eps=1e-12)
    assert fit.converged.all()
    _, score, _ = cox_terms(variables, valid, fit.beta, risk, True, compiled=False)
    np.testing.assert_allclose(score, 0.0, atol=1e-8)  # the xp body's score vanishes there


@pytest.mark.parametrize("covariates", [True, False])
def test_steep_coefficients_whose_risk_sums_are_subnormal(covariates):
    """Steep coefficients (a separated gene on its way up) make the latest risk sets sum to
    subnormal numbers or to 0: the kernels divide by them as the xp body does (an inverse
    would overflow; Python's x/0 would raise) and give it non-finite likelihoods alike."""
    variables, valid, beta, risk = _problem(22, False, False, False)
    used = variables if covariates else variables[:1]
    b = beta[:, : len(used)].copy()
    b[:, 0] = np.linspace(100.0, 400.0, b.shape[0])  # exp(η − max η) down to e⁻¹⁰⁰⁰ and below
    compiled = cox_terms(used, valid, b, risk, True)
    with np.errstate(divide="ignore", invalid="ignore"):  # risk sums of exactly 0 as well
        body = cox_terms(used, valid, b, risk, True, compiled=False)
    assert not np.isfinite(body[0]).all()  # the case the kernels once raised on
    for got, expected in zip(compiled, body, strict=True):
        assert np.array_equal(np.isfinite(got), np.isfinite(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_ridge_penalty_on_every_namespace(xp):
    """A ridge penalty (fit_cox's, R's ridge()) subtracts Σ pβ²/2, pβ and diag(p) from the
    terms, in the xp body (on the CuPy stand-in too) and the compiled twin alike; Newton's
    fit then solves score = pβ."""
    variables, valid, beta, risk = _problem(23, True, False, False)
    penalty = np.array([0.0, 2.0, 0.5])
    plain = cox_terms(variables, valid, beta, risk, True)
    on = [xp.asarray(v) for v in variables]
    penalised = cox_terms(on, xp.asarray(valid), xp.asarray(beta), risk, True, penalty=penalty)
    penalised = [np.asarray(xp.asnumpy(t) if hasattr(xp, "asnumpy") else t) for t in penalised]
    np.testing.assert_allclose(
        penalised[0], plain[0] - 0.5 * (penalty * beta**2).sum(axis=1), rtol=1e-11
    )
    np.testing.assert_allclose(penalised[1], plain[1] - penalty * beta, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(penalised[2], plain[2] + np.diag(penalty), rtol=1e-11, atol=1e-11)
    fit = cox_newton(variables, valid, np.zeros_like(beta), risk, eps=1e-12, penalty=penalty)
    _, score, _ = cox_terms(variables, valid, fit.beta, risk, True)
    np.testing.assert_allclose(score, penalty * fit.beta, atol=1e-8)
