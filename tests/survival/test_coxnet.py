"""The lasso/elastic-net Cox path against R's glmnet 4.1-6 on GSE7390 (fixtures from
tests/fixtures/make_coxnet_fixtures.R): the penalties, the coefficients and the deviance
explained along the path, where it stops, cv.glmnet's grouped deviance and its two choices.

glmnet solves each penalty only approximately (even at thresh = 1e-13 its gradients are up to
~10⁻³ λ off at the path's end, and its stratified path 3-30% off), so the coefficients are held
to it at that precision and to the optimality (KKT) conditions themselves at 10⁻⁷ λ, with a
Breslow gradient computed here pair by pair."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, CohortexWarning, survival

CASES = {
    "months_lasso": {"time": "months"},
    "days_enet": {"time": "time", "alpha": 0.5},
    "months_raw": {"time": "months", "standardize": False, "alpha": 0.8},
    "wide": {"time": "months", "rows": slice(0, 50)},
    "months_given": {"time": "months", "given": True},
}


def _reference(case):
    path = pd.read_csv(FIXTURES / f"coxnet_{case}_path.csv")
    null = pd.read_csv(FIXTURES / f"coxnet_{case}.csv")["nulldev"].iloc[0]
    return path, path.iloc[:, 3:].to_numpy(), float(null)


def _fit(case, ds, **extra):
    options = dict(CASES.get(case, {}), **extra)
    rows = options.pop("rows", slice(None))
    time = options.pop("time", "months")
    if options.pop("given", False):
        options["lambdas"] = _reference(case)[0]["lambda"].to_numpy()
    return survival.coxnet(ds.isel(sample=rows), time, "event", folds=0, **options)


def _breslow_gradient(x, time, event, strata, beta):
    """∂l/∂β / n of Breslow's partial likelihood, one event at a time."""
    risk = np.exp(x @ beta)
    total = np.zeros(x.shape[1])
    for i in np.flatnonzero(event):
        at_risk = (time >= time[i]) & (strata == strata[i])
        total += x[i] - risk[at_risk] @ x[at_risk] / risk[at_risk].sum()
    return total / time.size


def _kkt_gap(model, ds, time, strata, alpha, standardize=True):
    """The largest violation of the optimality conditions along the path, relative to λ."""
    x = ds["expression"].values
    scale = x.std(axis=0) if standardize else np.ones(x.shape[1])
    event = ds["event"].values
    worst = 0.0
    for penalty, beta in zip(model.path["lambda"], model.coefficients, strict=True):
        gradient = _breslow_gradient(x, ds[time].values, event, strata, beta) / scale
        standard = beta * scale
        on = standard != 0
        stationary = gradient[on] - penalty * (
            alpha * np.sign(standard[on]) + (1 - alpha) * standard[on]
        )
        excess = np.abs(gradient[~on]) - penalty * alpha
        worst = max(worst, np.abs(stationary).max(initial=0) / penalty)
        worst = max(worst, excess.max(initial=0) / penalty)
    return worst


@pytest.mark.parametrize("case", CASES)
def test_coxnet_path_equals_glmnet(case):
    ds = breast_cancer()
    model = _fit(case, ds)
    reference, beta, null = _reference(case)
    # glmnet's "wide" path stops at its 99th penalty for want of convergence; this one goes on
    steps = len(reference)
    assert len(model.path) == (100 if case == "wide" else steps)
    path = model.path.iloc[:steps]
    np.testing.assert_allclose(path["lambda"], reference["lambda"], rtol=1e-7)
    np.testing.assert_array_equal(path["nonzero"], reference["df"])
    np.testing.assert_allclose(path["dev_ratio"], reference["dev_ratio"], atol=3e-6)
    assert model.null_deviance == pytest.approx(null, rel=1e-12)
    largest = np.abs(beta).max()
    np.testing.assert_allclose(model.coefficients[:steps], beta, atol=1e-4 * largest)
    if "given" not in CASES[case]:  # glmnet's path of small steps: its first 20 ~10⁻⁶ λ off
        np.testing.assert_allclose(model.coefficients[:20], beta[:20], atol=2e-6 * largest)
    assert list(model.genes) == list(reference.columns[3:])


@pytest.mark.parametrize(
    ("case", "alpha", "strata", "standardize"),
    [
        ("months_lasso", 1.0, None, True),
        ("days_enet", 0.5, None, True),
        ("months_raw", 0.8, None, False),
        ("months_strata", 1.0, "er", True),
    ],
)
def test_coxnet_path_meets_the_optimality_conditions(case, alpha, strata, standardize):
    ds = breast_cancer()
    time = CASES.get(case, {}).get("time", "months")
    model = survival.coxnet(
        ds, time, "event", alpha=alpha, strata=strata, standardize=standardize, folds=0
    )
    codes = np.zeros(ds.sizes["sample"]) if strata is None else (ds[strata].values == "positive")
    assert _kkt_gap(model, ds, time, codes, alpha, standardize) < 1e-7


def test_coxnet_within_strata_beats_glmnets_stratified_path():
    """glmnet's own penalties within strata, and at each of them a lower penalised objective
    than glmnet's coefficients (its R path stops short of the optimum)."""
    ds = breast_cancer()
    model = survival.coxnet(ds, "months", "event", strata="er", folds=0)
    reference, beta, null = _reference("months_strata")
    steps = len(reference)
    np.testing.assert_allclose(model.path["lambda"][:steps], reference["lambda"], rtol=1e-12)
    assert model.null_deviance == pytest.approx(null, rel=1e-12)
    x = ds["expression"].values
    scale = x.std(axis=0)
    codes = ds["er"].values
    time, event = ds["months"].values, ds["event"].values

    def objective(coefficients, penalty):
        eta = x @ coefficients
        loglik = 0.0
        for i in np.flatnonzero(event):
            at_risk = (time >= time[i]) & (codes == codes[i])
            loglik += eta[i] - np.log(np.exp(eta[at_risk]).sum())
        return -loglik / time.size + penalty * np.abs(coefficients * scale).sum()

    for step in range(1, steps):
        penalty = reference["lambda"][step]
        ours = objective(model.coefficients[step], penalty)
        assert ours <= objective(beta[step], penalty) + 1e-12
    assert (
        objective(model.coefficients[10], reference["lambda"][10])
        < objective(beta[10], reference["lambda"][10]) - 1e-4
    )


def test_coxnet_cross_validation_equals_cv_glmnet():
    """cv.glmnet(foldid = ..., lambda = the path's first 50): the grouped deviance per event,
    its standard error, the nonzero counts, lambda.min and lambda.1se."""
    ds = breast_cancer()
    reference = pd.read_csv(FIXTURES / "coxnet_cv.csv")
    choice = pd.read_csv(FIXTURES / "coxnet_cv_choice.csv").iloc[0]
    folds = pd.read_csv(FIXTURES / "coxnet_cv_folds.csv")["fold"].to_numpy()
    model = survival.coxnet(
        ds, "months", "event", folds=folds, lambdas=reference["lambda"].to_numpy()
    )
    np.testing.assert_allclose(model.path["cv_deviance"], reference["cvm"], rtol=2e-4)
    np.testing.assert_allclose(model.path["cv_se"], reference["cvsd"], rtol=2e-4)
    # at the larger penalties glmnet's fits are exact enough to hold it closer
    np.testing.assert_allclose(model.path["cv_deviance"][:15], reference["cvm"][:15], rtol=1e-6)
    np.testing.assert_array_equal(model.path["nonzero"], reference["nzero"])
    assert model.lambda_min == pytest.approx(choice["lambda_min"], rel=1e-12)
    assert model.lambda_1se == pytest.approx(choice["lambda_1se"], rel=1e-12)
    np.testing.assert_array_equal(model.folds, folds)


def test_coxnet_defaults_choose_a_penalty_and_predict():
    """With its defaults (10 folds balanced for events): a penalty between the path's ends, the
    genes of lambda_min, and predict = x · β by gene id on another cohort's columns."""
    ds = breast_cancer()
    model = survival.coxnet(ds, "months", "event")
    lambdas = model.path["lambda"].to_numpy()
    assert lambdas[-1] < model.lambda_min <= model.lambda_1se <= lambdas[0]
    assert np.bincount(model.folds).min() >= 19
    chosen = model.coef()
    index = int(np.flatnonzero(lambdas == model.lambda_min)[0])
    assert len(chosen) == model.path["nonzero"][index] > 0
    x = ds["expression"].to_pandas()
    expected = x[chosen.index] @ chosen
    shuffled = ds.isel(gene=np.random.default_rng(0).permutation(ds.sizes["gene"]))
    np.testing.assert_allclose(model.predict(shuffled).to_numpy(), expected.to_numpy(), rtol=1e-12)
    # between two penalties: glmnet's linear interpolation
    middle = 0.5 * (lambdas[10] + lambdas[11])
    np.testing.assert_allclose(
        model.coef(middle).reindex(model.genes, fill_value=0.0).to_numpy(),
        0.5 * (model.coefficients[10] + model.coefficients[11]),
        rtol=1e-12,
    )


def test_coxnet_float32_store_values_fit_as_float64():
    """A float32 cohort (a store's dtype) is fitted without a float64 copy, to the same path as
    the same values in float64."""
    ds = breast_cancer()
    narrow = ds.assign(expression=ds["expression"].astype(np.float32))
    wide = ds.assign(expression=narrow["expression"].astype(np.float64))
    a = survival.coxnet(narrow, "months", "event", folds=0, n_lambdas=30)
    b = survival.coxnet(wide, "months", "event", folds=0, n_lambdas=30)
    np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-9, atol=1e-12)


def test_coxnet_leaves_constant_genes_out_and_takes_a_gene_subset():
    ds = breast_cancer()
    genes = [str(g) for g in ds["gene"].values[:12]]
    flat = ds.copy(deep=True)
    flat["expression"][:, 3] = 5.0
    model = survival.coxnet(flat, "months", "event", genes=genes, folds=0)
    assert list(model.genes) == genes
    assert np.all(model.coefficients[:, 3] == 0)
    assert model.path["nonzero"].iloc[-1] == 11


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"genes": ["nope"]}, "not in the cohort"),
        ({"folds": 2}, "at least 3"),
        ({"lambdas": [0.1, -1.0]}, "lambdas"),
        ({"lambda_min_ratio": 2.0}, "lambda_min_ratio"),
    ],
)
def test_coxnet_refuses_bad_options(options, message):
    with pytest.raises(CohortexError, match=message):
        survival.coxnet(breast_cancer(), "months", "event", **options)


def test_coxnet_refuses_missing_values_and_no_events():
    ds = breast_cancer()
    holed = ds.copy(deep=True)
    holed["expression"][4, 2] = np.nan
    with pytest.raises(CohortexError, match="missing values"):
        survival.coxnet(holed, "months", "event")
    with pytest.raises(CohortexError, match="No sample has an event"):
        survival.coxnet(ds, "months", np.zeros(ds.sizes["sample"]), folds=0)
    model = survival.coxnet(ds, "months", "event", folds=0, n_lambdas=5)
    with pytest.raises(CohortexError, match="not cross-validated"):
        model.coef()


def test_coxnet_without_forming_the_information_gives_the_same_path(monkeypatch):
    """Above 4,000 genes in play the Newton steps run without forming the information matrix
    (coordinate descent on X̃ᵀWX̃ kept implicit); forced here for every penalty, the same path."""
    ds = breast_cancer()
    formed = survival.coxnet(ds, "months", "event", folds=0, n_lambdas=40)
    monkeypatch.setattr("cohortex.survival._coxnet._EXPLICIT_GENES", 0)
    implicit = survival.coxnet(ds, "months", "event", folds=0, n_lambdas=40)
    assert len(implicit.path) == len(formed.path)
    np.testing.assert_allclose(implicit.coefficients, formed.coefficients, rtol=0, atol=1e-7)
    assert _kkt_gap(implicit, ds, "months", np.zeros(ds.sizes["sample"]), 1.0) < 1e-6


def test_coxnet_shows_its_progress_when_asked(capsys):
    ds = breast_cancer()
    options = {"folds": 3, "n_lambdas": 10, "lambda_min_ratio": 0.01}
    survival.coxnet(ds, "months", "event", progress=False, **options)
    assert "coxnet" not in capsys.readouterr().err
    survival.coxnet(ds, "months", "event", progress=True, **options)
    shown = capsys.readouterr().err
    assert "coxnet" in shown and "/4" in shown  # the whole cohort's path, then three folds' paths


CLINICAL = "~ age + size + grade + er"
# R's model.matrix names of the same columns, in the same order
CLINICAL_IN_R = [
    "age",
    "size",
    "gradepoorly differentiated",
    "gradewell differentiated",
    "erpositive",
]


def _known_grade(ds):
    """The patients of a known grade (the two of grade "unkown" are censored: that level's
    coefficient is infinite)."""
    return ds.isel(sample=ds["grade"].values != "unkown")


def _gene_factors(ds):
    """The fixture's penalty factors: the first two genes unpenalised, the next three at 2,
    the sixth left out, the next four at 0.5, the rest 1."""
    genes = [str(g) for g in ds["gene"].values]
    factors = {genes[0]: 0.0, genes[1]: 0.0, genes[5]: np.inf}
    factors.update({g: 2.0 for g in genes[2:5]})
    factors.update({g: 0.5 for g in genes[6:10]})
    return factors


def test_coxnet_with_unpenalised_covariates_equals_glmnet():
    """glmnet(cbind(clinical, x), penalty.factor = c(0, …, 1, …)): the path starts from the
    clinical variables' own fit; its penalties, the genes in, the deviance explained and both
    the covariates' and the genes' coefficients."""
    ds = _known_grade(breast_cancer())
    model = survival.coxnet(ds, "months", "event", covariates=CLINICAL, folds=0)
    reference, beta, null = _reference("clinical")
    assert list(reference.columns[3:8]) == CLINICAL_IN_R
    assert model.covariates == (
        "age",
        "size",
        "grade[T.poorly differentiated]",
        "grade[T.well differentiated]",
        "er[T.positive]",
    )
    steps = len(reference)  # glmnet stops converging at its 75th penalty (thresh 1e-13)
    assert len(model.path) > steps
    path = model.path.iloc[:steps]
    # glmnet's first fit of the covariates is its coordinate descent's, to ~1e-7
    np.testing.assert_allclose(path["lambda"], reference["lambda"], rtol=1e-6)
    np.testing.assert_array_equal(path["nonzero"], reference["df"] - 5)
    np.testing.assert_allclose(path["dev_ratio"], reference["dev_ratio"], atol=3e-6)
    assert path["dev_ratio"][0] > 0.02  # the clinical variables' own fit
    assert model.null_deviance == pytest.approx(null, rel=1e-12)
    clinical, genes = beta[:, :5], beta[:, 5:]
    largest = np.abs(beta).max()
    np.testing.assert_allclose(model.covariate_coefficients[:steps], clinical, atol=1e-4 * largest)
    np.testing.assert_allclose(model.coefficients[:steps], genes, atol=1e-4 * largest)
    np.testing.assert_allclose(
        model.covariate_coefficients[:20], clinical[:20], atol=2e-6 * largest
    )
    np.testing.assert_allclose(model.coefficients[:20], genes[:20], atol=2e-6 * largest)
    assert np.all(model.covariate_coefficients != 0)


def test_coxnet_with_penalty_factors_equals_glmnet():
    """glmnet's penalty.factor (0, 2, Inf and 0.5 among 1s, rescaled by glmnet to sum to the
    genes' number), with the elastic net."""
    ds = breast_cancer()
    model = survival.coxnet(
        ds, "months", "event", penalty_factor=_gene_factors(ds), alpha=0.7, folds=0
    )
    reference, beta, null = _reference("factors")
    steps = len(reference)
    assert len(model.path) >= steps
    path = model.path.iloc[:steps]
    np.testing.assert_allclose(path["lambda"], reference["lambda"], rtol=1e-7)
    np.testing.assert_array_equal(path["nonzero"], reference["df"])
    np.testing.assert_allclose(path["dev_ratio"], reference["dev_ratio"], atol=3e-6)
    largest = np.abs(beta).max()
    np.testing.assert_allclose(model.coefficients[:steps], beta, atol=1e-4 * largest)
    np.testing.assert_allclose(model.coefficients[:20], beta[:20], atol=2e-6 * largest)
    assert np.all(model.coefficients[:, :2] != 0)  # unpenalised: in from the first penalty
    assert np.all(model.coefficients[:, 5] == 0)  # left out


@pytest.mark.parametrize("case", ["clinical", "factors"])
def test_coxnet_cross_validation_with_penalty_factors_equals_cv_glmnet(case):
    reference = pd.read_csv(FIXTURES / f"coxnet_{case}_cv.csv")
    folds = pd.read_csv(FIXTURES / "coxnet_cv_folds.csv")["fold"].to_numpy()
    ds = breast_cancer()
    options: dict = {"penalty_factor": _gene_factors(ds), "alpha": 0.7}
    if case == "clinical":
        folds = folds[ds["grade"].values != "unkown"]
        ds, options = _known_grade(ds), {"covariates": CLINICAL}
    model = survival.coxnet(
        ds, "months", "event", folds=folds, lambdas=reference["lambda"].to_numpy(), **options
    )
    np.testing.assert_allclose(model.path["cv_deviance"], reference["cvm"], rtol=2e-4)
    np.testing.assert_allclose(model.path["cv_se"], reference["cvsd"], rtol=2e-4)
    np.testing.assert_allclose(model.path["cv_deviance"][:15], reference["cvm"][:15], rtol=1e-5)
    # glmnet's first lambda is its extrapolation, ~1e-7 below the largest: a gene may be in
    nonzero = reference["nzero"] - (5 if case == "clinical" else 0)
    np.testing.assert_array_equal(model.path["nonzero"][1:], nonzero[1:])
    assert model.lambda_min == pytest.approx(reference["lambda_min"][0], rel=1e-12)
    assert model.lambda_1se == pytest.approx(reference["lambda_1se"][0], rel=1e-12)


def _assert_glmnet_path(model, case, dev_atol):
    """The path against glmnet's fixture: its null deviance, penalties (its first is
    extrapolated, the others follow it: to ~1e-8), genes in, deviance explained (glmnet's
    solutions less exact: to a few 1e-6) and coefficients. Returns glmnet's path table."""
    reference, beta, null = _reference(case)
    assert model.null_deviance == pytest.approx(null, rel=1e-12)
    steps = len(reference)
    path = model.path.iloc[:steps]
    np.testing.assert_allclose(path["lambda"], reference["lambda"], rtol=1e-7)
    np.testing.assert_array_equal(path["nonzero"][1:], reference["df"][1:])
    np.testing.assert_allclose(path["dev_ratio"], reference["dev_ratio"], atol=dev_atol)
    largest = np.abs(beta).max()
    np.testing.assert_allclose(model.coefficients[:20], beta[:20], atol=2e-6 * largest)
    np.testing.assert_allclose(model.coefficients[:steps], beta, atol=1e-4 * largest)
    return reference


def _assert_weighted_kkt(model, ds, weights, offset):
    """The lasso's optimality conditions at every tenth penalty, within 1e-7 λ: the
    gradient of the weighted log partial likelihood over Σw (the offset in the predictor), by
    a loop over the events, on the genes' weighted standardisation."""
    x, time, event = ds["expression"].values, ds["months"].values, ds["event"].values
    share = weights / weights.sum()
    scale = np.sqrt(share @ (x - share @ x) ** 2)
    pairs = list(zip(model.path["lambda"], model.coefficients, strict=True))
    for penalty, coefficients in pairs[::10]:
        risk = weights * np.exp(offset + x @ coefficients)
        gradient = np.zeros(x.shape[1])
        for i in np.flatnonzero(event):
            at_risk = time >= time[i]
            gradient += weights[i] * (x[i] - risk[at_risk] @ x[at_risk] / risk[at_risk].sum())
        gradient = gradient / weights.sum() / scale
        on = coefficients != 0
        stationary = np.abs(gradient[on] - penalty * np.sign(coefficients[on]))
        assert stationary.max(initial=0.0) < 1e-7 * penalty
        assert np.abs(gradient[~on]).max(initial=0.0) <= penalty * (1 + 1e-7)


def _with_score(ds):
    """The fixture's offset: a fixed clinical score, 0.03 a year of age, 0.5 ER-negative."""
    score = 0.03 * ds["age"].values + 0.5 * (ds["er"].values == "negative")
    return ds.assign(score=("sample", score))


def test_coxnet_with_an_offset_equals_glmnet():
    """glmnet(offset = score): the path from the offset's null model (its nulldev), the
    genes fitted on top of it; the penalties, deviance explained and coefficients, cv.glmnet
    with the offset, and predict(newoffset)."""
    ds = _with_score(breast_cancer())
    model = survival.coxnet(ds, "months", "event", offset="score", folds=0)
    reference = _assert_glmnet_path(model, "offset", dev_atol=3e-6)
    _assert_weighted_kkt(model, ds, np.ones(198), ds["score"].values)
    expected = pd.read_csv(FIXTURES / "coxnet_offset_predict.csv")
    patients = ds.isel(sample=expected["patient"].to_numpy())
    np.testing.assert_allclose(patients["score"].values, expected["offset"], rtol=1e-12)
    link = model.predict(patients, reference["lambda"][9]).to_numpy()
    np.testing.assert_allclose(link, expected["link"], rtol=2e-5)
    moved = model.predict(patients, reference["lambda"][9], offset=np.zeros(5)).to_numpy()
    np.testing.assert_allclose(link - moved, expected["offset"], rtol=1e-12)


def test_coxnet_cross_validation_with_an_offset_equals_cv_glmnet():
    reference = pd.read_csv(FIXTURES / "coxnet_offset_cv.csv")
    folds = pd.read_csv(FIXTURES / "coxnet_cv_folds.csv")["fold"].to_numpy()
    ds = _with_score(breast_cancer())
    model = survival.coxnet(
        ds,
        "months",
        "event",
        offset=ds["score"].values,
        folds=folds,
        lambdas=reference["lambda"].to_numpy(),
    )
    np.testing.assert_allclose(model.path["cv_deviance"], reference["cvm"], rtol=1e-5)
    np.testing.assert_allclose(model.path["cv_se"], reference["cvsd"], rtol=1e-5)
    assert model.lambda_min == pytest.approx(reference["lambda_min"][0], rel=1e-12)
    assert model.lambda_1se == pytest.approx(reference["lambda_1se"][0], rel=1e-12)
    assert model.offset is True
    with pytest.raises(CohortexError, match="offset given as values"):
        model.predict(ds)
    survival_at = model.predict_survival(ds.isel(sample=[0, 1]), [12, 60], offset=[0.0, 0.0])
    assert survival_at["survival"].between(0, 1).all()
    plain = survival.coxnet(ds, "months", "event", folds=0)
    with pytest.raises(CohortexError, match="without an offset"):
        plain.predict(ds, 0.05, offset="score")
    missing = ds["score"].values.copy()
    missing[3] = np.nan
    with pytest.raises(CohortexError, match="offset of 1 samples are missing"):
        survival.coxnet(ds, "months", "event", offset=missing, folds=0)


def _case_weights():
    """The fixture's observation weights: 0.5, 1.5 and 2.5 in turn."""
    return 0.5 + (np.arange(1, 199) % 3)


def test_coxnet_with_observation_weights_equals_glmnet():
    """glmnet(weights = w): the weighted partial likelihood and standardisation; the null
    deviance in the weights' units, the path, cv.glmnet's grouped deviance (each part in
    weights scaled to mean 1, per weighted event) and its choices, and the weighted Efron
    baseline of survfit."""
    ds = breast_cancer()
    weights = _case_weights()
    model = survival.coxnet(ds, "months", "event", weights=weights, folds=0)
    reference = _assert_glmnet_path(model, "weights", dev_atol=5e-6)
    beta, steps = reference.iloc[:, 3:].to_numpy(), len(reference)
    _assert_weighted_kkt(model, ds, weights, np.zeros(198))
    cv = pd.read_csv(FIXTURES / "coxnet_weights_cv.csv")
    folds = pd.read_csv(FIXTURES / "coxnet_cv_folds.csv")["fold"].to_numpy()
    chosen = survival.coxnet(
        ds, "months", "event", weights=weights, folds=folds, lambdas=cv["lambda"].to_numpy()
    )
    np.testing.assert_allclose(chosen.path["cv_deviance"], cv["cvm"], rtol=1e-5)
    np.testing.assert_allclose(chosen.path["cv_se"], cv["cvsd"], rtol=1e-5)
    assert chosen.lambda_min == pytest.approx(cv["lambda_min"][0], rel=1e-12)
    assert chosen.lambda_1se == pytest.approx(cv["lambda_1se"][0], rel=1e-12)
    expected = pd.read_csv(FIXTURES / "coxnet_weights_survival.csv")
    expected["sample"] = ds["sample"].values[expected["patient"]]
    theirs = replace(
        model,
        path=model.path.iloc[:steps].assign(**{"lambda": reference["lambda"].to_numpy()}),
        coefficients=beta,
        training_predictors=beta @ ds["expression"].values.astype(np.float64).T,
    )
    found = theirs.predict_survival(
        ds.isel(sample=[0, 1, 2, 49, 119]), [1, 12, 60, 120, 300], expected["lambda"][0]
    )
    merged = found.merge(expected, on=["sample", "time"], suffixes=("", "_r"))
    assert len(merged) == len(expected) >= 20
    np.testing.assert_allclose(merged["survival"], merged["survival_r"], rtol=1e-9)


def test_coxnet_weights_of_one_change_nothing_and_bad_weights_are_refused():
    ds = breast_cancer()
    plain = survival.coxnet(ds, "months", "event", folds=0)
    ones = survival.coxnet(ds, "months", "event", weights=np.full(198, 3.0), folds=0)
    np.testing.assert_allclose(ones.coefficients, plain.coefficients, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ones.path["lambda"], plain.path["lambda"], rtol=1e-12)
    assert ones.null_deviance == pytest.approx(3.0 * plain.null_deviance, rel=1e-12)
    bad = np.ones(198)
    bad[5] = 0.0
    with pytest.raises(
        CohortexError, match="weights of 1 samples are missing, not finite or not positive"
    ):
        survival.coxnet(ds, "months", "event", weights=bad, folds=0)


def test_coxnet_with_covariates_and_factors_meets_the_optimality_conditions():
    """Within strata, where there is no glmnet to follow (its stratified path starts from
    coxph's Efron fit of the unpenalised variables): each penalised coefficient's condition at
    its own factor (rescaled as glmnet's), each unpenalised one's gradient 0, by a Breslow
    gradient computed pair by pair."""
    ds = _known_grade(breast_cancer())
    factors = _gene_factors(ds)
    model = survival.coxnet(
        ds,
        "months",
        "event",
        covariates="~ age + size",
        penalty_factor=factors,
        strata="er",
        alpha=0.7,
        folds=0,
        n_lambdas=40,
    )
    clinical = np.column_stack([ds["age"].values, ds["size"].values]).astype(np.float64)
    x = np.column_stack([clinical, ds["expression"].values])
    factor = np.r_[0.0, 0.0, [factors.get(str(g), 1.0) for g in ds["gene"].values]]
    out = np.isinf(factor)
    factor[out] = 1.0
    factor *= factor.size / factor.sum()
    factor[out] = 0.0
    scale = x.std(axis=0)
    codes = (ds["er"].values == "positive").astype(float)
    worst = 0.0
    for step, penalty in enumerate(model.path["lambda"]):
        beta = np.r_[model.covariate_coefficients[step], model.coefficients[step]]
        gradient = _breslow_gradient(x, ds["months"].values, ds["event"].values, codes, beta)
        gradient /= scale  # per standardised coefficient
        standard = beta * scale
        on = standard != 0
        target = penalty * factor * (0.7 * np.sign(standard) + 0.3 * standard)
        worst = max(worst, np.abs(gradient[on] - target[on]).max() / penalty)
        bound = penalty * factor * 0.7
        worst = max(
            worst, (np.abs(gradient[~on & ~out]) - bound[~on & ~out]).max(initial=0) / penalty
        )
        assert np.all(beta[out] == 0)
    assert worst < 1e-7


def test_coxnet_predicts_with_its_covariates_and_refuses_unseen_levels():
    ds = _known_grade(breast_cancer())
    model = survival.coxnet(ds, "months", "event", covariates="~ age + grade")
    genes, clinical = model.coef(), model.covariate_coef()
    assert list(clinical.index) == [
        "age",
        "grade[T.poorly differentiated]",
        "grade[T.well differentiated]",
    ]
    x = ds["expression"].to_pandas()
    grade = pd.Series(ds["grade"].values)
    expected = (
        x[genes.index].to_numpy() @ genes.to_numpy()
        + ds["age"].values * clinical["age"]
        + (grade == "poorly differentiated").to_numpy() * clinical.iloc[1]
        + (grade == "well differentiated").to_numpy() * clinical.iloc[2]
    )
    # another cohort: genes shuffled, and without the reference level "intermediate"
    other = ds.isel(gene=np.random.default_rng(0).permutation(ds.sizes["gene"]))
    keep = grade.to_numpy() != "intermediate"
    np.testing.assert_allclose(
        model.predict(other.isel(sample=keep)).to_numpy(), expected[keep], rtol=1e-12
    )
    with pytest.raises(CohortexError, match="do not fit the model"):
        model.predict(breast_cancer())  # grade "unkown", never seen


def test_coxnet_warns_of_an_unbounded_covariate_and_holds_it():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = survival.coxnet(breast_cancer(), "months", "event", covariates=CLINICAL, folds=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, CohortexWarning)]
    assert len(messages) == 1 and "grade[T.unkown]' may be infinite" in messages[0]
    # the path runs on to glmnet's early stop (its own steps spent on the genes, not on
    # chasing the unbounded coefficient), which is held where its own fit left it
    assert len(model.path) > 60
    unkown = model.covariate_coefficients[:, model.covariates.index("grade[T.unkown]")]
    assert unkown[0] < -10 and np.all(unkown == unkown[0])


@pytest.mark.parametrize("case", ["months_lasso", "months_strata"])
def test_coxnet_predicted_survival_equals_glmnets_survfit(case):
    """glmnet's survfit(fit, s, x, y, newx) for five patients: the Efron-type baseline hazard
    of the training linear predictors (within ER strata too). Given glmnet's own coefficients,
    equal to 1e-9; with cohortex's (glmnet's are less precise, its stratified path 3-30% of
    λ off optimal) close for the lasso."""
    ds = breast_cancer()
    strata = "er" if case == "months_strata" else None
    model = survival.coxnet(ds, "months", "event", strata=strata, folds=0)
    expected = pd.read_csv(FIXTURES / f"coxnet_{case}_survival.csv")
    expected["sample"] = ds["sample"].values[expected["patient"]]
    penalty = float(expected["lambda"].iloc[0])
    reference, beta, _ = _reference(case)
    steps = len(reference)
    x = ds["expression"].values.astype(np.float64)
    theirs = replace(
        model,
        path=model.path.iloc[:steps].assign(**{"lambda": reference["lambda"].to_numpy()}),
        coefficients=beta,
        training_predictors=beta @ x.T,
    )
    patients = ds.isel(sample=[0, 1, 2, 49, 119])
    times = [1, 12, 60, 120, 300]
    checks = [(theirs, 1e-9)] + ([(model, 1e-4)] if strata is None else [])
    for fitted, tolerance in checks:
        found = fitted.predict_survival(patients, times, penalty)
        assert list(found.columns) == (
            ["sample"] + (["stratum"] if strata else []) + ["time", "survival", "cumulative_hazard"]
        )
        merged = found.merge(expected, on=["sample", "time"], how="left", suffixes=("", "_r"))
        reported = merged["survival_r"].notna()
        assert reported.sum() == len(expected) >= 20
        for column in ["survival", "cumulative_hazard"]:
            np.testing.assert_allclose(
                merged.loc[reported, column],
                merged.loc[reported, f"{column}_r"],
                rtol=tolerance,
                atol=1e-14,
            )
            assert merged.loc[~reported, column].isna().all()
    with pytest.raises(CohortexError, match="finite and >= 0"):
        model.predict_survival(patients, [np.nan], penalty)


@pytest.mark.parametrize(
    ("factors", "message"),
    [
        ({"nope": 1.0}, "not among the candidates"),
        ({"217771_at": -1.0}, ">= 0"),
        ({"217771_at": np.nan}, ">= 0"),
    ],
)
def test_coxnet_refuses_bad_penalty_factors(factors, message):
    with pytest.raises(CohortexError, match=message):
        survival.coxnet(breast_cancer(), "months", "event", penalty_factor=factors, folds=0)


def test_coxnet_refuses_penalty_factors_that_penalise_nothing():
    ds = breast_cancer()
    genes = [str(g) for g in ds["gene"].values[:3]]
    with pytest.raises(CohortexError, match="no gene penalised"):
        survival.coxnet(
            ds, "months", "event", genes=genes, penalty_factor=dict.fromkeys(genes, 0.0), folds=0
        )
