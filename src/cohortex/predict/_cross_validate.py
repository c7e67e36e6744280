"""Cross-validated prediction of a sample variable, gene selection inside each training fold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd

from .._backend import dask_on, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, measurement_levels, shared_docs
from .._errors import CohortexError
from ..stats._moments import GroupMoments, group_moments
from ._auroc import auroc_interval

__all__ = [
    "MODELS",
    "PENALTIES",
    "SELECTIONS",
    "CrossValidation",
    "class_codes",
    "cross_validate",
    "cuml_model_arguments",
    "make_model",
    "permutation_pvalue",
    "top_genes",
]

MODELS = ("logistic", "random_forest")
PENALTIES = ("l2", "l1", "elasticnet", "none")
SELECTIONS = ("anova", "welch", "variance")


@dataclass
class CrossValidation:
    """The result of :func:`cross_validate`.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per (repeat, fold): ``n_train``, ``n_test``, ``auroc``, ``balanced_accuracy``.
    predictions : pandas.DataFrame
        One row per (repeat, sample): the fold, the true class and the predicted probability
        of each class (``p_<class>``), out of fold.
    auroc : float
        Of the pooled out-of-fold predictions (first repeat; one-vs-rest macro average with
        more than two classes).
    auroc_ci : (float, float)
        Its DeLong interval (two classes; NaN otherwise).
    balanced_accuracy : float
        Of the pooled predictions (first repeat).
    genes : pandas.DataFrame
        Per gene ever selected: ``selected`` (fraction of folds that chose it), ``importance``
        (mean over folds of |coefficient| or the forest's importance; 0 where not chosen),
        sorted by both.
    fold_genes : list of ndarray of str
        The genes each fold chose, one entry per row of ``folds``.
    permutation_auroc : ndarray
        Pooled AUROC of each label permutation (empty without ``permutations``), the whole
        procedure, selection included, run on shuffled labels.
    permutation_pvalue : float
        ``(1 + #{permuted ≥ observed}) / (1 + permutations)``; NaN without permutations.
    classes : list of str
    parameters : dict
    timings : dict
        Seconds of the three stages of the unshuffled run: ``selection`` (the pass over the
        store and the F ranking), ``reading`` (the chosen genes into memory), ``fitting``
        (the models and their predictions).
    """

    folds: pd.DataFrame
    predictions: pd.DataFrame
    auroc: float
    auroc_ci: tuple[float, float]
    balanced_accuracy: float
    genes: pd.DataFrame
    fold_genes: list[np.ndarray]
    permutation_auroc: np.ndarray
    permutation_pvalue: float
    classes: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def _binary(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self.classes) != 2:
            raise CohortexError("ROC, precision-recall and calibration are for two classes.")
        first = self.predictions[self.predictions["repeat"] == 0]
        positive = self.classes[1]
        return (first["truth"] == positive).to_numpy(int), first[f"p_{positive}"].to_numpy()

    def roc(self) -> pd.DataFrame:
        """The pooled out-of-fold ROC curve (first repeat; the second class is positive):
        ``false_positive_rate``, ``true_positive_rate``, ``threshold``."""
        from sklearn.metrics import roc_curve

        fpr, tpr, thresholds = roc_curve(*self._binary())
        return pd.DataFrame(
            {"false_positive_rate": fpr, "true_positive_rate": tpr, "threshold": thresholds}
        )

    def precision_recall(self) -> pd.DataFrame:
        """The pooled precision–recall curve: ``recall``, ``precision``, ``threshold`` (NaN
        at the curve's end)."""
        from sklearn.metrics import precision_recall_curve

        precision, recall, thresholds = precision_recall_curve(*self._binary())
        return pd.DataFrame(
            {"recall": recall, "precision": precision, "threshold": np.append(thresholds, np.nan)}
        )

    def calibration(self, bins: int = 10) -> pd.DataFrame:
        """Observed frequency of the positive class against the mean predicted probability
        in ``bins`` equal-width bins (empty bins left out): ``predicted``, ``observed``,
        ``n``."""
        truth, probability = self._binary()
        which = np.minimum((probability * bins).astype(int), bins - 1)
        table = pd.DataFrame({"bin": which, "predicted": probability, "observed": truth})
        grouped = table.groupby("bin")
        return pd.DataFrame(
            {
                "predicted": grouped["predicted"].mean(),
                "observed": grouped["observed"].mean(),
                "n": grouped.size(),
            }
        ).reset_index(drop=True)


@shared_docs
def cross_validate(
    cohort: CohortLike,
    target: str | Any,
    *,
    k: int = 500,
    select: str = "anova",
    model: str = "logistic",
    penalty: str = "l2",
    C: float | Sequence[float] = 1.0,
    l1_ratio: float = 0.5,
    folds: int = 5,
    inner_folds: int = 3,
    repeats: int = 1,
    permutations: int = 0,
    seed: int = 0,
    device: str = "auto",
) -> CrossValidation:
    """Cross-validated classification of a sample variable from expression.

    Within every training fold the ``k`` genes with the largest ANOVA F between the classes
    are chosen from the training samples only (``SelectKBest(f_classif)``), standardised on
    them, and the model fitted; the held-out fold is then predicted. Selecting on all samples
    first and cross-validating afterwards leaks the held-out labels into the selection (on
    pure noise it reports a good AUROC); this function cannot do that. One pass over the store
    per repeat gives every fold's F (moments per fold and class, merged leaving each fold out);
    the chosen genes are then read once.

    Parameters
    ----------
    {cohort}
    target : str or sequence
        The classes: a sample variable or one label per sample; samples without a label
        (missing, "") are left out.
    k : int, default 500
        Genes chosen in each training fold (all genes when the cohort has fewer).
    select : {"anova", "welch", "variance"}, default "anova"
        How the training fold's genes are ranked: ANOVA F between the classes
        (``SelectKBest(f_classif)``), Welch's |t| (two classes: the DE ranking), or the
        variance over the training samples, ignoring the classes (highly variable genes).
    model : {"logistic", "random_forest"}, default "logistic"
        scikit-learn's ``LogisticRegression`` or ``RandomForestClassifier`` (500 trees).
    penalty : {"l2", "l1", "elasticnet", "none"}, default "l2"
        The logistic regression's penalty (``saga`` solver for l1 and elastic net).
    C : float or sequence of float, default 1.0
        Inverse penalty strength; several values are tuned by nested cross-validation: in each
        outer training fold, ``inner_folds`` stratified folds (genes again chosen inside each
        inner training fold, one more pass over the store per outer fold) pick the value with
        the best mean inner AUROC (the first on ties), as scikit-learn's ``GridSearchCV``;
        ``folds["C"]`` gives each fold's choice.
    l1_ratio : float, default 0.5
        The elastic net's mix.
    folds : int, default 5
        Stratified folds (shuffled with ``seed``).
    inner_folds : int, default 3
        Folds of the nested cross-validation (only with several ``C``).
    repeats : int, default 1
        Repeats of the whole cross-validation with other splits.
    permutations : int, default 0
        Runs on shuffled labels for a null distribution of the AUROC.
    seed : int, default 0
    {device}

    Returns
    -------
    CrossValidation
    """
    from sklearn.model_selection import RepeatedStratifiedKFold

    if model not in MODELS:
        raise CohortexError(
            f"The 'model' parameter of cross_validate() must be one of "
            f"{', '.join(map(repr, MODELS))}; got {model!r}."
        )
    if select not in SELECTIONS:
        raise CohortexError(
            f"The 'select' parameter of cross_validate() must be one of "
            f"{', '.join(map(repr, SELECTIONS))}; got {select!r}."
        )
    if penalty not in PENALTIES:
        raise CohortexError(
            f"The 'penalty' parameter of cross_validate() must be one of "
            f"{', '.join(map(repr, PENALTIES))}; got {penalty!r}."
        )
    grid = [float(c) for c in np.atleast_1d(np.asarray(C, dtype=np.float64))]
    if not grid or any(not c > 0 for c in grid):
        raise CohortexError(f"'C' must be positive (one value or several); got {C!r}.")
    if len(grid) > 1 and (model != "logistic" or inner_folds < 2):
        raise CohortexError(
            "Several C values are tuned by nested cross-validation of the logistic model, "
            f"with inner_folds >= 2; got model={model!r}, inner_folds={inner_folds}."
        )
    if folds < 2 or repeats < 1 or permutations < 0 or k < 1:
        raise CohortexError(
            "cross_validate() needs folds >= 2, repeats >= 1, permutations >= 0 and k >= 1; "
            f"got folds={folds}, repeats={repeats}, permutations={permutations}, k={k}."
        )
    on = resolve_device(device)
    data = as_cohort_matrix(cohort)
    codes, classes = class_codes(data, target)
    if select == "welch" and len(classes) != 2:
        raise CohortexError(f"select='welch' ranks two classes; found {len(classes)}.")
    kept = np.flatnonzero(codes >= 0)
    smallest = min(int((codes == c).sum()) for c in range(len(classes)))
    if smallest < folds:
        raise CohortexError(
            f"The smallest class has {smallest} samples, fewer than the {folds} folds."
        )
    x = dask_on(data.matrix, on, (4096, 4096))
    k = min(k, x.shape[1])
    settings = {
        "device": on,
        "model": model,
        "penalty": penalty,
        "C": grid[0],
        "grid": grid,
        "inner_folds": inner_folds,
        "l1_ratio": l1_ratio,
        "seed": seed,
        "select": select,
    }
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(splitter.split(np.zeros(kept.size), codes[kept]))

    def run(y: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, float]]:
        return _cross_validate_once(x, y, kept, splits, folds, len(classes), k, settings)

    fold_table, predictions, importances, timings = run(codes)
    first = predictions[predictions["repeat"] == 0]
    probabilities = first[[f"p_{c}" for c in range(len(classes))]].to_numpy()
    truth = first["class"].to_numpy()
    observed = _pooled_auroc(truth, probabilities)
    interval = auroc_interval(truth, probabilities[:, 1]) if len(classes) == 2 else (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(permutations):
        shuffled = codes.copy()
        shuffled[kept] = rng.permutation(codes[kept])
        _, permuted, _, _ = run(shuffled)
        permuted = permuted[permuted["repeat"] == 0]
        scores = permuted[[f"p_{c}" for c in range(len(classes))]].to_numpy()
        null.append(_pooled_auroc(permuted["class"].to_numpy(), scores))
    null_array = np.asarray(null)
    predictions = predictions.assign(
        sample=np.asarray(data.sample_ids)[predictions["row"].to_numpy()],
        truth=np.asarray(classes, dtype=object)[predictions["class"].to_numpy()],
    ).rename(columns={f"p_{c}": f"p_{name}" for c, name in enumerate(classes)})
    return CrossValidation(
        folds=fold_table,
        predictions=predictions.drop(columns=["row", "class"]),
        auroc=observed,
        auroc_ci=interval,
        balanced_accuracy=_balanced_accuracy(truth, probabilities),
        genes=_gene_table(importances, np.asarray(data.gene_ids), len(splits)),
        fold_genes=[
            np.asarray(data.gene_ids)[importances.loc[importances["fold"] == i, "gene"]]
            for i in range(len(splits))
        ],
        permutation_auroc=null_array,
        permutation_pvalue=permutation_pvalue(null_array, observed),
        classes=classes,
        parameters={**settings, "k": k, "folds": folds, "repeats": repeats},
        timings=timings,
    )


def permutation_pvalue(null: np.ndarray, observed: float) -> float:
    """``(1 + #{null ≥ observed}) / (1 + runs)``: the permutation p-value of ``observed``
    against the statistics of permuted runs (NaN without any)."""
    null = np.asarray(null)
    return float((1 + np.sum(null >= observed)) / (1 + null.size)) if null.size else np.nan


def class_codes(data: Any, target: Any) -> tuple[np.ndarray, list[str]]:
    """Each sample's class index (-1: no label) and the classes, sorted."""
    labels = _labels(data, target)
    kept = labels != ""
    classes = sorted(set(labels[kept]))
    if len(classes) < 2:
        raise CohortexError(f"Prediction needs at least two classes; found {classes}.")
    codes = np.full(labels.size, -1)
    codes[kept] = [classes.index(c) for c in labels[kept]]
    return codes, classes


def _labels(data: Any, target: Any) -> np.ndarray:
    n = data.matrix.shape[0]
    if isinstance(target, str):
        if data.dataset is None or target not in data.sample_variables():
            variables = [] if data.dataset is None else data.sample_variables()
            raise CohortexError(
                f"The 'target' parameter must name a sample variable; got {target!r}. Sample "
                f"variables: {', '.join(variables) or '(none)'}."
            )
        values = np.asarray(to_host(data.dataset[target].values))
    else:
        values = np.asarray(to_host(target))
    if values.shape != (n,):
        raise CohortexError(
            f"The 'target' labels must have one entry per sample ({n}); got {values.shape}."
        )
    distinct = measurement_levels(values)
    if distinct:
        raise CohortexError(
            f"The 'target' holds {distinct} distinct fractional numbers among "
            f"{int(np.isfinite(values).sum())} samples; predict() classifies samples into "
            "classes. Cut it into classes first."
        )
    labels = pd.Series(values).astype(object)
    missing = labels.isna()
    return np.where(missing, "", labels.astype(str)).astype(str)


def _cross_validate_once(
    x: Any,
    codes: np.ndarray,
    kept: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    folds: int,
    n_classes: int,
    k: int,
    settings: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Every fold of every repeat for one labelling: selection, fit, held-out predictions."""
    import time

    start = time.perf_counter()
    chosen: list[np.ndarray] = []
    for repeat in range(len(splits) // folds):
        block = splits[repeat * folds : (repeat + 1) * folds]
        cell = np.full(codes.size, -1)  # (fold, class) of each kept sample
        for fold, (_, test) in enumerate(block):
            rows = kept[test]
            cell[rows] = fold * n_classes + codes[rows]
        (moments,) = dask.compute(group_moments(x, cell, folds * n_classes, omit_nan=True))
        for fold in range(folds):
            training = [
                [f * n_classes + c for f in range(folds) if f != fold] for c in range(n_classes)
            ]
            chosen.append(top_genes(moments, training, k, settings["select"]))
    union = np.unique(np.concatenate(chosen))
    selected = time.perf_counter()
    values = np.asarray(to_host(x[:, union].compute()), dtype=np.float64)
    read = time.perf_counter()
    if np.isnan(values[kept]).any():
        raise CohortexError(
            "The chosen genes have missing values in labelled samples; prediction needs "
            "complete values (impute or drop those genes first)."
        )
    position = {gene: i for i, gene in enumerate(union)}
    rows_out, importances = [], []
    predictions = []
    for index, (train, test) in enumerate(splits):
        repeat, fold = divmod(index, folds)
        columns = [position[g] for g in chosen[index]]
        train_rows, test_rows = kept[train], kept[test]
        tuned = dict(settings)
        if len(settings["grid"]) > 1:
            tuned["C"] = _tune(x, codes, train_rows, n_classes, k, settings)
        fitted = make_model(tuned).fit(values[np.ix_(train_rows, columns)], codes[train_rows])
        probability = fitted.predict_proba(values[np.ix_(test_rows, columns)])
        truth = codes[test_rows]
        rows_out.append(
            {
                "repeat": repeat,
                "fold": fold,
                "n_train": train_rows.size,
                "n_test": test_rows.size,
                "auroc": _pooled_auroc(truth, probability),
                "balanced_accuracy": _balanced_accuracy(truth, probability),
                "C": tuned["C"],
            }
        )
        importances.append((chosen[index], _importance(fitted)))
        frame = pd.DataFrame(probability, columns=[f"p_{c}" for c in range(n_classes)])
        predictions.append(
            frame.assign(repeat=repeat, fold=fold, row=test_rows, **{"class": truth})
        )
    genes = pd.DataFrame(
        [
            (g, i, w)
            for i, (genes_, weights) in enumerate(importances)
            for g, w in zip(genes_, weights, strict=True)
        ],
        columns=["gene", "fold", "importance"],
    )
    table = pd.concat(predictions, ignore_index=True)
    table = table[["repeat", "fold", "row", "class", *[f"p_{c}" for c in range(n_classes)]]]
    timings = {
        "selection": selected - start,
        "reading": read - selected,
        "fitting": time.perf_counter() - read,
    }
    return pd.DataFrame(rows_out), table, genes, timings


def _tune(
    x: Any,
    codes: np.ndarray,
    train_rows: np.ndarray,
    n_classes: int,
    k: int,
    settings: dict[str, Any],
) -> float:
    """The C of the grid with the best mean AUROC over inner folds of one outer training
    fold, genes chosen inside each inner training fold (``GridSearchCV``'s choice)."""
    from sklearn.model_selection import StratifiedKFold

    inner = settings["inner_folds"]
    splitter = StratifiedKFold(inner, shuffle=True, random_state=settings["seed"])
    splits = list(splitter.split(np.zeros(train_rows.size), codes[train_rows]))
    cell = np.full(codes.size, -1)
    for fold, (_, held) in enumerate(splits):
        rows = train_rows[held]
        cell[rows] = fold * n_classes + codes[rows]
    (moments,) = dask.compute(group_moments(x, cell, inner * n_classes, omit_nan=True))
    chosen = []
    for fold in range(inner):
        others = [f for f in range(inner) if f != fold]
        cells = [[f * n_classes + c for f in others] for c in range(n_classes)]
        chosen.append(top_genes(moments, cells, k, settings["select"]))
    union = np.unique(np.concatenate(chosen))
    values = np.asarray(to_host(x[:, union].compute()), dtype=np.float64)
    position = {gene: i for i, gene in enumerate(union)}
    scores = np.zeros(len(settings["grid"]))
    for fold, (fit_part, held) in enumerate(splits):
        columns = [position[g] for g in chosen[fold]]
        fit_rows, held_rows = train_rows[fit_part], train_rows[held]
        for i, c in enumerate(settings["grid"]):
            model = make_model({**settings, "C": c})
            model.fit(values[np.ix_(fit_rows, columns)], codes[fit_rows])
            probability = model.predict_proba(values[np.ix_(held_rows, columns)])
            scores[i] += _pooled_auroc(codes[held_rows], probability) / inner
    return float(settings["grid"][int(np.argmax(scores))])


def top_genes(
    moments: GroupMoments, cells: list[list[int]], k: int, select: str = "anova"
) -> np.ndarray:
    """The k best genes, class c pooling the moment cells ``cells[c]``, ranked by ``select``
    (ANOVA F, Welch's |t| or the variance); chosen as ``SelectKBest`` chooses (its stable
    sort, NaN lowest) and returned sorted by index."""
    per_class = [moments.select(group).pooled() for group in cells]
    n_classes = len(cells)
    count = np.concatenate([np.asarray(to_host(m.count)) for m in per_class])
    mean = np.concatenate([np.asarray(to_host(m.mean)) for m in per_class])
    m2 = np.concatenate([np.asarray(to_host(m.m2)) for m in per_class])
    n = count.sum(axis=0)
    grand = (count * mean).sum(axis=0) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        if select == "variance":  # over all training samples, classes ignored
            score = (m2.sum(axis=0) + (count * (mean - grand) ** 2).sum(axis=0)) / (n - 1)
        elif select == "welch":
            variance = m2 / (count - 1)
            score = np.abs(mean[1] - mean[0]) / np.sqrt(
                variance[1] / count[1] + variance[0] / count[0]
            )
        else:
            between = (count * (mean - grand) ** 2).sum(axis=0) / (n_classes - 1)
            within = m2.sum(axis=0) / (n - n_classes)
            score = between / within
    score = np.where(np.isnan(score), np.finfo(np.float64).min, score)
    return np.sort(np.argsort(score, kind="mergesort")[-k:])


def make_model(settings: dict[str, Any]) -> Any:
    """The unfitted model of ``settings``: standardisation and a logistic regression, or a
    random forest; cuML's on a GPU when cuML is installed, else scikit-learn's (the model
    sees only the chosen genes, a small matrix)."""
    if settings.get("device") == "gpu":
        try:
            import cuml  # noqa: F401 (only whether it is installed)
        except ImportError:
            pass
        else:
            return _CumlModel(settings)
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if settings["model"] == "random_forest":
        return RandomForestClassifier(n_estimators=500, random_state=settings["seed"], n_jobs=-1)
    penalty = settings["penalty"]
    options: dict[str, Any] = {"C": settings["C"], "max_iter": 5000}
    if penalty == "none":
        options.update(C=np.inf)
    elif penalty == "l1":
        options.update(l1_ratio=1.0, solver="saga")
    elif penalty == "elasticnet":
        options.update(l1_ratio=settings["l1_ratio"], solver="saga")
    return make_pipeline(StandardScaler(), LogisticRegression(**options))


def cuml_model_arguments(settings: dict[str, Any]) -> dict[str, Any]:
    """What cuML (26.10) is given for ``settings``: ``LogisticRegression`` (penalty None for
    none, its quasi-Newton solver) or ``RandomForestClassifier`` (500 trees)."""
    if settings["model"] == "random_forest":
        return {"n_estimators": 500, "random_state": settings["seed"]}
    penalty = settings["penalty"]
    arguments: dict[str, Any] = {
        "penalty": None if penalty == "none" else penalty,
        "C": settings["C"],
        "max_iter": 5000,
    }
    if penalty == "elasticnet":
        arguments["l1_ratio"] = settings["l1_ratio"]
    return arguments


class _CumlModel:
    """cuML's model on the device, the genes standardised there as ``StandardScaler`` does
    (population standard deviation, 1 where it is 0); host arrays in and out."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import cuml

        kind = settings["model"]
        family = cuml.ensemble.RandomForestClassifier if kind == "random_forest" else None
        self.model = (family or cuml.linear_model.LogisticRegression)(
            **cuml_model_arguments(settings)
        )
        self.standardise = kind != "random_forest"

    def _device(self, values: np.ndarray, fit: bool = False) -> Any:
        from .._backend import to_device

        x = to_device(np.ascontiguousarray(values, dtype=np.float64), "gpu")
        if not self.standardise:
            return x
        if fit:
            self.mean = x.mean(axis=0)
            spread = x.std(axis=0)
            self.scale = spread + (spread == 0)  # 1 where the gene is constant
        return (x - self.mean) / self.scale

    def fit(self, values: np.ndarray, codes: np.ndarray) -> _CumlModel:
        from .._backend import to_device

        self.model.fit(self._device(values, fit=True), to_device(codes.astype(np.int32), "gpu"))
        return self

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(to_host(self.model.predict_proba(self._device(values))))

    @property
    def importance(self) -> np.ndarray:
        if hasattr(self.model, "coef_"):
            return np.abs(np.asarray(to_host(self.model.coef_))).mean(axis=0)
        return np.asarray(to_host(self.model.feature_importances_))


def _importance(fitted: Any) -> np.ndarray:
    if isinstance(fitted, _CumlModel):
        return fitted.importance
    last = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
    if hasattr(last, "coef_"):
        return np.abs(last.coef_).mean(axis=0)
    return np.asarray(last.feature_importances_)


def _gene_table(importances: pd.DataFrame, gene_ids: np.ndarray, n_folds: int) -> pd.DataFrame:
    grouped = importances.groupby("gene")
    table = pd.DataFrame(
        {
            "selected": grouped.size() / n_folds,
            "importance": grouped["importance"].sum() / n_folds,
        }
    )
    table.index = pd.Index(gene_ids[table.index.to_numpy()], name="gene")
    return table.sort_values(["selected", "importance"], ascending=False)


def _pooled_auroc(truth: np.ndarray, probability: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(truth)) < 2:
        return np.nan
    if probability.shape[1] == 2:
        return float(roc_auc_score(truth, probability[:, 1]))
    present = np.unique(truth)
    if present.size < probability.shape[1]:
        return np.nan
    return float(roc_auc_score(truth, probability, multi_class="ovr", average="macro"))


def _balanced_accuracy(truth: np.ndarray, probability: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(truth, probability.argmax(axis=1)))
