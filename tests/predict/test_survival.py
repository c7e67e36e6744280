"""Cross-validated survival prediction: each fold equals the loop a user would write with
the public functions (each held to R: survival.cox, fit_cox with a ridge, concordance), the
planted genes are found with the defaults, and selection inside the folds does not leak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.model_selection import RepeatedStratifiedKFold

from cohortex import CohortexError, open_cohort, predict, simulate, survival

FIXTURES = Path(__file__).parents[1] / "fixtures" / "survival"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """300 samples × 1,000 genes, five of which set the hazard (log HR ±0.5 per SD)."""
    path = tmp_path_factory.mktemp("survival") / "s.zarr"
    simulate(path, 300, 1000, survival_genes=5, log_hr=0.5, seed=3, progress=False)
    return open_cohort(path)


def test_each_fold_equals_the_public_functions_loop(planted):
    """With a fixed penalty: the folds' genes, the ridge fit on the training samples (fit_cox
    penalises each gene by its variance: the same as standardising) and Harrell's C of the
    held-out samples, all equal to the steps done by hand."""
    result = predict.cross_validate_survival(planted, "time", "event", k=8, ridge=2.0, seed=4)
    time, event = planted["time"].values, planted["event"].values
    splits = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=4)
    for fold, (train, test) in enumerate(splits.split(np.zeros(time.size), event)):
        per_gene = survival.cox(planted.isel(sample=train), "time", "event")
        chosen = per_gene["statistic"].to_series().abs().nlargest(8).index
        assert set(result.fold_genes[fold]) == set(chosen)
        genes = list(result.fold_genes[fold])
        model = survival.fit_cox(
            planted.isel(sample=train), "time", "event", genes=genes, ridge=2.0
        )
        risk = model.predict(planted.isel(sample=test)).to_numpy()
        ours = result.predictions.set_index("sample").loc[planted["sample"].values[test], "risk"]
        np.testing.assert_allclose(ours.to_numpy(), risk, rtol=1e-8, atol=1e-10)
        held_out = survival.concordance(None, time[test], event[test], risk)
        assert result.folds["concordance"][fold] == pytest.approx(held_out.concordance, rel=1e-12)
    assert (result.folds["penalty"] == 2.0).all()


@pytest.mark.parametrize("choice", ["lambda_min", "lambda_1se"])
def test_lasso_folds_equal_coxnet_on_each_training_fold(planted, choice):
    """model="lasso": in each fold coxnet on the training samples' top-k genes (down to 1% of
    its largest penalty), its penalty cv.glmnet's lambda_min (or lambda_1se) over 5 inner
    folds; the genes it keeps, its λ and the held-out C equal those of survival.coxnet run
    by hand."""
    result = predict.cross_validate_survival(
        planted, "time", "event", model="lasso", k=30, lambda_choice=choice
    )
    time, event = planted["time"].values, planted["event"].values
    splits = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=0)
    for fold, (train, test) in enumerate(splits.split(np.zeros(time.size), event)):
        per_gene = survival.cox(planted.isel(sample=train), "time", "event")
        chosen = list(per_gene["statistic"].to_series().abs().nlargest(30).index)
        model = survival.coxnet(
            planted.isel(sample=train),
            "time",
            "event",
            genes=chosen,
            folds=5,
            lambda_min_ratio=0.01,
        )
        penalty = getattr(model, choice)
        assert result.folds["penalty"][fold] == pytest.approx(penalty, rel=1e-10)
        assert set(result.fold_genes[fold]) == set(model.coef(choice).index)
        assert result.folds["genes"][fold] == len(model.coef(choice))
        risk = model.predict(planted.isel(sample=test), choice).to_numpy()
        held_out = survival.concordance(None, time[test], event[test], risk)
        assert result.folds["concordance"][fold] == pytest.approx(held_out.concordance, rel=1e-9)


def test_lasso_defaults_find_the_planted_genes(planted):
    """With the lasso's defaults (200 genes a fold): the planted genes lead the table, fewer
    than half the candidates are kept, and the pooled C is near the true linear predictor's."""
    result = predict.cross_validate_survival(planted, "time", "event", model="lasso")
    truth = planted["true_log_hr"].to_series()
    planted_genes = set(truth.index[truth != 0])
    assert len(planted_genes & set(result.genes.index[:5])) >= 4
    assert (result.folds["genes"] < 100).all()  # fewer than half the candidates
    x = planted["expression"].sel(gene=sorted(planted_genes)).values
    oracle = survival.concordance(
        None, planted["time"].values, planted["event"].values, x @ truth[sorted(planted_genes)]
    )
    assert oracle.concordance - 0.08 < result.concordance < oracle.concordance + 0.02
    final = predict.fit_survival(planted, "time", "event", model="lasso")
    assert isinstance(final, survival.CoxnetModel)
    assert len(planted_genes & set(final.coef().index)) >= 4


def test_defaults_find_the_planted_genes(planted):
    """With the defaults (20 genes, the penalty chosen in each fold): the planted genes are
    chosen in most folds and lead the table, and the pooled C is near the C of the true
    linear predictor (what a perfect model of these samples would score)."""
    result = predict.cross_validate_survival(planted, "time", "event", permutations=9)
    truth = planted["true_log_hr"].to_series()
    planted_genes = set(truth.index[truth != 0])
    leading = set(result.genes.index[:5])
    assert len(planted_genes & leading) >= 4
    assert result.genes.loc[sorted(planted_genes), "selected"].mean() >= 0.8
    x = planted["expression"].sel(gene=sorted(planted_genes)).values
    oracle = survival.concordance(
        None, planted["time"].values, planted["event"].values, x @ truth[sorted(planted_genes)]
    )
    assert oracle.concordance - 0.08 < result.concordance < oracle.concordance + 0.02
    assert result.concordance > 0.6 and result.permutation_pvalue == pytest.approx(0.1)
    assert len(result.predictions) == 300 and result.predictions["risk"].notna().all()
    # the cross-validated risk groups: high above the training median of each fold; their
    # log-rank χ² is survival.logrank's (survdiff's) of that split, and they separate
    groups = result.predictions["risk_group"].to_numpy() == "high"
    assert 0.35 < groups.mean() < 0.65
    time, event = planted["time"].values, planted["event"].values
    share_low = (~groups).mean()
    split = survival.logrank(groups[:, None].astype(float), time, event, quantile=share_low / 2)
    assert result.logrank_statistic == pytest.approx(float(split["statistic"][0]), rel=1e-12)
    assert result.logrank_pvalue < 1e-4 and result.logrank_permutation_pvalue == pytest.approx(0.1)
    curves = result.kaplan_meier()
    starts = curves.groupby("group")["n_risk"].first()
    assert starts.to_dict() == {"high": groups.sum(), "low": (~groups).sum()}
    last = curves.groupby("group")["survival"].last()
    assert last["high"] < last["low"]


def test_selection_inside_the_folds_does_not_leak():
    """Pure-noise outcomes: choosing the genes on all samples first reports a good C;
    choosing them inside each training fold sits at chance."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(150, 2000))
    time = rng.exponential(5.0, 150)
    event = (rng.random(150) < 0.7).astype(int)
    everyone = survival.cox(x, time, event)["statistic"].to_series().abs()
    leaky_genes = [f"G{i + 1}" for i in np.argsort(-everyone.to_numpy())[:20]]
    genes = pd.Index([f"G{i + 1}" for i in range(2000)])
    leaky = []
    splits = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=0)
    for train, test in splits.split(np.zeros(150), event):
        columns = genes.get_indexer(leaky_genes)
        model = survival.fit_cox(
            x[train][:, columns],
            time[train],
            event[train],
            genes=[f"G{i + 1}" for i in range(20)],
            ridge=1.0,
        )
        risk = model.predict(x[test][:, columns]).to_numpy()
        leaky.append(survival.concordance(None, time[test], event[test], risk).concordance)
    honest = predict.cross_validate_survival(x, time, event, permutations=19)
    assert np.mean(leaky) > 0.6
    assert abs(honest.concordance - 0.5) < 3 * honest.concordance_se
    assert honest.permutation_concordance.shape == (19,) and honest.permutation_pvalue > 0.05


def test_bad_input(planted):
    with pytest.raises(CohortexError, match="folds >= 2"):
        predict.cross_validate_survival(planted, "time", "event", folds=1)
    with pytest.raises(CohortexError, match="'ridge'"):
        predict.cross_validate_survival(planted, "time", "event", ridge=-1.0)
    with pytest.raises(CohortexError, match="'ridge'"):
        predict.cross_validate_survival(planted, "time", "event", model="lasso", ridge=1.0)
    with pytest.raises(CohortexError, match="'model'"):
        predict.cross_validate_survival(planted, "time", "event", model="forest")
    with pytest.raises(CohortexError, match="3 for the lasso"):
        predict.fit_survival(planted, "time", "event", model="lasso", inner_folds=2)
    few = np.zeros(300, dtype=int)
    few[:3] = 1
    with pytest.raises(CohortexError, match="each of the 5 folds"):
        predict.cross_validate_survival(planted, "time", few)


def test_fit_survival_scores_a_new_cohort(planted):
    """The final signature on 200 samples: the genes of survival.cox on them, the penalty
    chosen by the cross-validated partial likelihood (one of the grid), fit_cox with both;
    it ranks the other 100 samples well (Harrell's C near the true linear predictor's)."""
    train, test = planted.isel(sample=slice(0, 200)), planted.isel(sample=slice(200, None))
    model = predict.fit_survival(train, "time", "event", k=10)
    chosen = survival.cox(train, "time", "event")["statistic"].to_series().abs().nlargest(10)
    assert set(model.genes) == set(chosen.index)
    assert model.ridge in predict.RIDGE_GRID
    again = survival.fit_cox(train, "time", "event", genes=list(model.genes), ridge=model.ridge)
    np.testing.assert_allclose(model.terms["coefficient"], again.terms["coefficient"])
    risk = model.predict(test).to_numpy()
    scored = survival.concordance(None, test["time"].values, test["event"].values, risk)
    truth = planted["true_log_hr"].to_series()
    genes = sorted(truth.index[truth != 0])
    oracle = survival.concordance(
        None,
        test["time"].values,
        test["event"].values,
        test["expression"].sel(gene=genes).values @ truth[genes],
    )
    assert scored.concordance > oracle.concordance - 0.08 and scored.concordance > 0.6


@pytest.fixture(scope="module")
def breast_cancer():
    """GSE7390 (tests/fixtures/survival/): 198 patients × 76 genes with age, tumour size,
    grade and ER status."""
    data = pd.read_csv(FIXTURES / "breast_cancer.csv")
    genes = list(data.columns[7:])
    clinical = ["age", "size", "grade", "er", "time", "event"]
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), data[genes].to_numpy()),
            **{name: ("sample", data[name].to_numpy()) for name in clinical},
        },
        coords={"sample": data["sample"].to_numpy(), "gene": np.array(genes)},
    )


CLINICAL = "~ age + size + er"


def test_covariates_each_fold_equals_the_public_functions_loop(breast_cancer):
    """covariates: the genes chosen by their Cox |z| adjusted for the clinical variables, the
    ridge on the genes beside them unpenalised, and the clinical model alone; each fold's
    risks and both held-out C equal survival.cox / fit_cox run by hand."""
    ds = breast_cancer
    result = predict.cross_validate_survival(
        ds, "time", "event", k=8, ridge=2.0, covariates=CLINICAL, seed=4
    )
    time, event = ds["time"].values, ds["event"].values
    splits = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=4)
    baseline = np.full(time.size, np.nan)
    for fold, (train, test) in enumerate(splits.split(np.zeros(time.size), event)):
        training, held_out = ds.isel(sample=train), ds.isel(sample=test)
        per_gene = survival.cox(training, "time", "event", covariates=CLINICAL)
        chosen = per_gene["statistic"].to_series().abs().nlargest(8).index
        assert set(result.fold_genes[fold]) == set(chosen)
        genes = list(result.fold_genes[fold])
        model = survival.fit_cox(
            training, "time", "event", genes=genes, covariates=CLINICAL, ridge=2.0
        )
        risk = model.predict(held_out).to_numpy()
        ours = result.predictions.set_index("sample").loc[ds["sample"].values[test], "risk"]
        np.testing.assert_allclose(ours.to_numpy(), risk, rtol=1e-8, atol=1e-10)
        scored = survival.concordance(None, time[test], event[test], risk)
        assert result.folds["concordance"][fold] == pytest.approx(scored.concordance, rel=1e-12)
        alone = survival.fit_cox(training, "time", "event", covariates=CLINICAL)
        baseline[test] = alone.predict(held_out).to_numpy()
        own = survival.concordance(None, time[test], event[test], baseline[test])
        assert result.folds["covariates_concordance"][fold] == pytest.approx(
            own.concordance, rel=1e-12
        )
    pooled = survival.concordance(None, time, event, baseline)
    assert result.covariates_concordance == pytest.approx(pooled.concordance, rel=1e-12)
    assert result.parameters["covariates"] == CLINICAL


def _fold_lasso(training, seed):
    """What a lasso fold with the clinical covariates does, by hand: the 30 genes of largest
    adjusted Cox |z|, then coxnet beside the covariates over 5 inner folds."""
    per_gene = survival.cox(training, "time", "event", covariates=CLINICAL)
    chosen = list(per_gene["statistic"].to_series().abs().nlargest(30).index)
    return survival.coxnet(
        training,
        "time",
        "event",
        genes=chosen,
        covariates=CLINICAL,
        folds=5,
        lambda_min_ratio=0.01,
        seed=seed,
    )


def test_lasso_with_covariates_equals_coxnet_on_each_training_fold(breast_cancer):
    ds = breast_cancer
    result = predict.cross_validate_survival(
        ds, "time", "event", model="lasso", k=30, covariates=CLINICAL
    )
    time, event = ds["time"].values, ds["event"].values
    splits = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=0)
    for fold, (train, test) in enumerate(splits.split(np.zeros(time.size), event)):
        model = _fold_lasso(ds.isel(sample=train), seed=0)
        assert result.folds["penalty"][fold] == pytest.approx(model.lambda_min, rel=1e-10)
        assert set(result.fold_genes[fold]) == set(model.coef().index)
        risk = model.predict(ds.isel(sample=test)).to_numpy()
        held_out = survival.concordance(None, time[test], event[test], risk)
        assert result.folds["concordance"][fold] == pytest.approx(held_out.concordance, rel=1e-9)
    assert 0.5 < result.covariates_concordance < 0.8


def test_fit_survival_with_covariates(breast_cancer):
    ds = breast_cancer
    lasso = predict.fit_survival(ds, "time", "event", model="lasso", k=30, covariates=CLINICAL)
    assert lasso.covariates == ("age", "size", "er[T.positive]")
    ridge = predict.fit_survival(ds, "time", "event", k=8, covariates=CLINICAL)
    chosen = survival.cox(ds, "time", "event", covariates=CLINICAL)["statistic"]
    assert set(ridge.genes) == set(chosen.to_series().abs().nlargest(8).index)
    assert {"age", "size", "er[T.positive]"} <= set(ridge.terms.index)
    with pytest.raises(CohortexError, match="sample variables"):
        predict.cross_validate_survival(
            ds["expression"].values, ds["time"].values, ds["event"].values, covariates=CLINICAL
        )


def test_lasso_lambda_1se_keeps_fewer_genes_and_is_the_final_models_default(planted):
    """lambda_choice="lambda_1se" keeps no more genes than lambda_min in any fold (fewer in
    all); fit_survival's model predicts at it by default."""
    options = {"model": "lasso", "k": 30}
    smallest = predict.cross_validate_survival(planted, "time", "event", **options)
    result = predict.cross_validate_survival(
        planted, "time", "event", lambda_choice="lambda_1se", **options
    )
    assert (result.folds["genes"] <= smallest.folds["genes"]).all()
    assert result.folds["genes"].sum() < smallest.folds["genes"].sum()
    final = predict.fit_survival(planted, "time", "event", lambda_choice="lambda_1se", **options)
    assert final.chosen == "lambda_1se"
    np.testing.assert_allclose(
        final.predict(planted).to_numpy(), final.predict(planted, "lambda_1se").to_numpy()
    )
    assert set(final.coef().index) == set(final.coef("lambda_1se").index)
    with pytest.raises(CohortexError, match="needs model='lasso'"):
        predict.cross_validate_survival(planted, "time", "event", lambda_choice="lambda_1se")
    with pytest.raises(CohortexError, match="'lambda_choice'"):
        predict.fit_survival(planted, "time", "event", model="lasso", lambda_choice="1se")


def test_weighted_concordance_of_the_pooled_risks_within_strata(breast_cancer):
    """Uno's C of the pooled out-of-fold risks within ER strata: the predictions carry each
    sample's stratum; with weights "n" it is the pooled Harrell's C the result reports."""
    result = predict.cross_validate_survival(
        breast_cancer, "time", "event", k=8, ridge=2.0, strata="er", repeats=2
    )
    first = result.predictions[result.predictions["repeat"] == 0]
    assert list(first["stratum"]) == list(breast_cancer["er"].values)
    harrell = result.weighted_concordance("n")
    assert harrell.concordance == pytest.approx(result.concordance, rel=1e-12)
    assert harrell.std_err == pytest.approx(result.concordance_se, rel=1e-10)
    uno = result.weighted_concordance(max_time=3652.5)
    by_hand = survival.concordance(
        None,
        breast_cancer["time"].values,
        breast_cancer["event"].values,
        first["risk"].to_numpy(),
        strata=breast_cancer["er"].values,
        time_weights="n/G2",
        max_time=3652.5,
    )
    assert uno == by_hand and uno.concordance != harrell.concordance


@pytest.mark.parametrize("model", ["ridge", "lasso"])
def test_held_out_survival_at_times_equals_each_folds_predict_survival(breast_cancer, model):
    """times: each held-out sample's survival is that of its training fold's model (fit_cox
    with the fold's genes and ridge, or coxnet at the fold's lambda_min, each held to R's
    survfit / glmnet's) run by hand, and the scores are time_dependent_scores of them."""
    ds = breast_cancer
    times = [1826.25, 3652.5]
    options = {"k": 8, "ridge": 2.0} if model == "ridge" else {"model": "lasso", "k": 30}
    result = predict.cross_validate_survival(
        ds, "time", "event", covariates=CLINICAL, times=times, seed=4, **options
    )
    time, event = ds["time"].values, ds["event"].values
    splits = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=4)
    by_sample = result.predictions.set_index("sample")
    for fold, (train, test) in enumerate(splits.split(np.zeros(time.size), event)):
        training, held_out = ds.isel(sample=train), ds.isel(sample=test)
        genes = list(result.fold_genes[fold])
        if model == "ridge":
            fitted = survival.fit_cox(
                training, "time", "event", genes=genes, covariates=CLINICAL, ridge=2.0
            )
            curves = fitted.predict_survival(held_out, times)
        else:
            fitted = _fold_lasso(training, seed=4)
            curves = fitted.predict_survival(held_out, times)
        expected = curves["survival"].to_numpy().reshape(test.size, len(times))
        ours = by_sample.loc[ds["sample"].values[test], ["survival_1826.25", "survival_3652.5"]]
        np.testing.assert_allclose(ours.to_numpy(), expected, rtol=1e-7)
    pooled = result.predictions[["survival_1826.25", "survival_3652.5"]].to_numpy()
    scores = survival.time_dependent_scores(ds, "time", "event", pooled, times)
    pd.testing.assert_frame_equal(result.scores, scores)
    assert (result.scores["auc"] > 0.5).all()


def test_times_beyond_a_training_folds_follow_up_are_refused(breast_cancer):
    with pytest.raises(CohortexError, match="beyond the follow-up of a training fold"):
        predict.cross_validate_survival(breast_cancer, "time", "event", k=8, ridge=2.0, times=[1e6])


def test_calibration_of_the_held_out_survival(breast_cancer):
    result = predict.cross_validate_survival(
        breast_cancer, "time", "event", k=8, ridge=2.0, times=[1826.25]
    )
    table = result.calibration(1826.25, groups=5)
    first = result.predictions[result.predictions["repeat"] == 0]
    expected = survival.calibration(
        None,
        first["time"],
        first["event"],
        first["survival_1826.25"].to_numpy(),
        1826.25,
        groups=5,
    )
    pd.testing.assert_frame_equal(table, expected)
    with pytest.raises(CohortexError, match="predicted it at 1826.25"):
        result.calibration(3652.5)


def test_fit_survival_within_strata_predicts_another_cohorts_survival(breast_cancer):
    """The final signature fitted within ER strata keeps the variable's name: another cohort's
    survival is predicted within its own ER levels, as fit_cox by hand predicts it."""
    ds = breast_cancer
    model = predict.fit_survival(ds, "time", "event", k=8, ridge=2.0, strata="er")
    assert model.strata == "er"
    other = ds.isel(sample=np.arange(0, 198, 3))
    found = model.predict_survival(other, [1826.25])
    by_hand = survival.fit_cox(
        ds, "time", "event", genes=list(model.genes), strata="er", ridge=2.0
    ).predict_survival(other, [1826.25])
    pd.testing.assert_frame_equal(found, by_hand)
    assert set(found["stratum"]) == {"negative", "positive"}
