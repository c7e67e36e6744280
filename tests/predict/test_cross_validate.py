"""Cross-validated prediction: the same folds as scikit-learn's pipeline give the same AUROC,
selection happens inside the folds, and the interval is DeLong's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cohortex import CohortexError, create_cohort, predict
from cohortex.predict._auroc import auroc_interval


def _cohort(seed: int, n: int = 160, genes: int = 300, signal: float = 0.8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, genes))
    y = rng.permutation(np.repeat(["tumour", "normal"], [n // 2 + 7, n - n // 2 - 7]))
    x[y == "tumour", :10] += signal
    return x, y


def test_per_fold_auroc_equals_a_scikit_learn_pipeline(tmp_path):
    x, y = _cohort(40)
    create_cohort(
        tmp_path / "c.zarr",
        x.astype(np.float32),
        samples=pd.DataFrame({"status": y}),
        chunks=(32, 64),
    )
    stored = x.astype(np.float32).astype(np.float64)
    result = predict.cross_validate(tmp_path / "c.zarr", "status", k=20, folds=5, seed=3)
    reference = make_pipeline(
        SelectKBest(f_classif, k=20), StandardScaler(), LogisticRegression(max_iter=5000)
    )
    folds = StratifiedKFold(5, shuffle=True, random_state=3)
    expected = cross_val_score(reference, stored, y == "tumour", cv=folds, scoring="roc_auc")
    np.testing.assert_allclose(result.folds["auroc"], expected, rtol=1e-10)
    assert result.classes == ["normal", "tumour"] and len(result.predictions) == 160
    assert 0.8 < result.auroc < 1 and result.auroc_ci[0] < result.auroc < result.auroc_ci[1]
    planted = {f"G{i}" for i in range(1, 11)}
    always = set(result.genes.index[result.genes["selected"] == 1.0])
    assert len(planted & always) >= 9  # every fold chose (nearly) every planted gene
    assert len(planted & set(result.genes.index[:12])) >= 9  # and they lead by importance


def test_selection_inside_the_folds_does_not_leak():
    """Pure-noise labels: selecting on all samples and then cross-validating reports a good
    AUROC; selection inside each training fold sits at chance."""
    rng = np.random.default_rng(41)
    x = rng.normal(size=(120, 2000))
    y = rng.permutation(np.repeat(["a", "b"], 60))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    selected = SelectKBest(f_classif, k=20).fit(x, y).get_support()
    leaky = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        x[:, selected],
        y,
        cv=folds,
        scoring="roc_auc",
    ).mean()
    honest = predict.cross_validate(x, y, k=20, folds=5, seed=0, permutations=19)
    assert leaky > 0.8
    assert abs(honest.auroc - 0.5) < 0.15
    assert honest.permutation_auroc.shape == (19,) and honest.permutation_pvalue > 0.05


def test_models_repeats_and_classes():
    x, y = _cohort(42, n=150, genes=120, signal=1.2)
    forest = predict.cross_validate(x, y, k=30, model="random_forest", folds=3, repeats=2)
    assert len(forest.folds) == 6 and forest.auroc > 0.8
    assert set(forest.predictions["repeat"]) == {0, 1}
    lasso = predict.cross_validate(x, y, k=30, penalty="l1", C=0.5, folds=3)
    assert lasso.auroc > 0.8
    three = np.where(np.arange(150) % 3 == 0, "c", y)
    multi = predict.cross_validate(x, three, k=30, folds=3)
    assert multi.classes == ["c", "normal", "tumour"] and np.isnan(multi.auroc_ci[0])
    assert {"p_c", "p_normal", "p_tumour"} <= set(multi.predictions.columns)


def test_delong_interval_matches_its_closed_form():
    """Against the textbook DeLong structural components, computed pairwise."""
    rng = np.random.default_rng(43)
    truth = rng.integers(0, 2, 80)
    score = truth * 0.8 + rng.normal(size=80)
    score[:10] = np.round(score[:10])  # ties
    positive, negative = score[truth == 1], score[truth == 0]
    psi = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    auc = psi.mean()
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = np.sqrt(v10.var(ddof=1) / positive.size + v01.var(ddof=1) / negative.size)
    low, high = auroc_interval(truth, score)
    np.testing.assert_allclose(
        [low, high], [auc - 1.959963984540054 * se, auc + 1.959963984540054 * se], rtol=1e-12
    )
    assert auc == pytest.approx(roc_auc_score(truth, score))


def test_bad_input():
    x, y = _cohort(44, n=40, genes=20)
    with pytest.raises(CohortexError, match="must be one of 'logistic', 'random_forest'"):
        predict.cross_validate(x, y, model="svm")
    with pytest.raises(CohortexError, match="fewer than the 10 folds"):
        predict.cross_validate(x, np.where(np.arange(40) < 5, "rare", "common"), folds=10)
    with pytest.raises(CohortexError, match="at least two classes"):
        predict.cross_validate(x, np.repeat("one", 40))
    with pytest.raises(CohortexError, match="must name a sample variable"):
        predict.cross_validate(x, "status")
    with pytest.raises(CohortexError, match=r"'target' holds 40 distinct fractional numbers"):
        predict.cross_validate(x, np.linspace(0, 1, 40))


def test_fit_predicts_another_cohort_by_gene_id(tmp_path):
    x, y = _cohort(45, n=200, genes=80, signal=1.5)
    classifier = predict.fit(x[:150], y[:150], k=15)
    assert len(classifier.genes) == 15 and classifier.classes == ["normal", "tumour"]
    reference = make_pipeline(
        SelectKBest(f_classif, k=15), StandardScaler(), LogisticRegression(max_iter=5000)
    ).fit(x[:150], y[:150])
    order = np.random.default_rng(0).permutation(80)  # the new cohort's genes in another order
    create_cohort(
        tmp_path / "new.zarr",
        x[150:, order],
        genes=pd.DataFrame(index=[f"G{i + 1}" for i in order]),
    )
    stored = x[150:].astype(np.float32).astype(np.float64)
    table = classifier.predict(tmp_path / "new.zarr")
    np.testing.assert_allclose(table["p_tumour"], reference.predict_proba(stored)[:, 1], rtol=1e-10)
    assert (table["predicted"] == np.where(table["p_tumour"] > 0.5, "tumour", "normal")).all()
    with pytest.raises(CohortexError, match="lacks 15 of the classifier's 15 genes"):
        classifier.predict(_renamed(x[150:]))


def _renamed(x):
    import xarray as xr

    return xr.Dataset(
        {"expression": (("sample", "gene"), x)},
        coords={"gene": [f"other{i}" for i in range(x.shape[1])]},
    )


def test_roc_precision_recall_and_calibration(tmp_path):
    from sklearn.metrics import auc

    from cohortex import plot

    x, y = _cohort(46, n=200, genes=60, signal=1.0)
    result = predict.cross_validate(x, y, k=10, folds=4, permutations=2)
    curve = result.roc()
    assert auc(curve["false_positive_rate"], curve["true_positive_rate"]) == pytest.approx(
        result.auroc, rel=1e-12
    )
    pr = result.precision_recall()
    assert pr["recall"].iloc[0] == 1.0 and pr["recall"].iloc[-1] == 0.0
    calibration = result.calibration(bins=5)
    assert calibration["n"].sum() == 200 and calibration["observed"].between(0, 1).all()
    assert calibration["predicted"].is_monotonic_increasing
    ax = plot.roc(result)
    assert "AUROC" in ax.get_legend().get_texts()[0].get_text()
    ax.figure.savefig(tmp_path / "roc.png")
    three = predict.cross_validate(x, np.where(np.arange(200) % 3 == 0, "c", y), k=10, folds=3)
    with pytest.raises(CohortexError, match="for two classes"):
        three.roc()


@pytest.mark.parametrize("select", ["welch", "variance"])
def test_other_selections_rank_the_training_fold(select):
    """Each fold's genes are the top k of the training samples by Welch's |t| or variance."""
    from scipy import stats

    x, y = _cohort(47, n=120, genes=90, signal=1.0)
    x[:, 50:60] *= 3.0  # highly variable genes without class signal
    result = predict.cross_validate(x, y, k=12, select=select, folds=3, seed=2)
    folds = StratifiedKFold(3, shuffle=True, random_state=2)
    for fold, (train, _) in enumerate(folds.split(x, y)):
        part, labels = x[train], y[train]
        if select == "welch":
            tumour, normal = part[labels == "tumour"], part[labels == "normal"]
            score = np.abs(stats.ttest_ind(tumour, normal, equal_var=False).statistic)
        else:
            score = part.var(axis=0, ddof=1)
        expected = np.sort(np.argsort(score, kind="mergesort")[-12:])
        chosen = np.sort([int(g[1:]) - 1 for g in result.fold_genes[fold]])
        np.testing.assert_array_equal(chosen, expected, err_msg=f"fold {fold}")
    with pytest.raises(CohortexError, match="ranks two classes"):
        predict.cross_validate(x, np.where(np.arange(120) % 3 == 0, "c", y), select="welch")


def test_nested_cross_validation_equals_grid_search_inside_cross_val_score():
    from sklearn.model_selection import GridSearchCV

    x, y = _cohort(48, n=150, genes=120, signal=0.5)
    grid = [0.001, 0.01, 0.1, 1.0]
    result = predict.cross_validate(x, y, k=15, C=grid, folds=4, inner_folds=3, seed=5)
    pipeline = make_pipeline(
        SelectKBest(f_classif, k=15), StandardScaler(), LogisticRegression(max_iter=5000)
    )
    search = GridSearchCV(
        pipeline,
        {"logisticregression__C": grid},
        cv=StratifiedKFold(3, shuffle=True, random_state=5),
        scoring="roc_auc",
    )
    outer = StratifiedKFold(4, shuffle=True, random_state=5)
    chosen, expected = [], []
    for train, test in outer.split(x, y):
        fitted = search.fit(x[train], y[train])
        chosen.append(fitted.best_params_["logisticregression__C"])
        expected.append(roc_auc_score(y[test] == "tumour", fitted.predict_proba(x[test])[:, 1]))
    assert result.folds["C"].tolist() == chosen
    np.testing.assert_allclose(result.folds["auroc"], expected, rtol=1e-10)
    assert result.parameters["grid"] == grid
    with pytest.raises(CohortexError, match="nested cross-validation of the logistic model"):
        predict.cross_validate(x, y, C=grid, model="random_forest")
