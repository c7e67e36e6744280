"""A final classifier trained on a whole cohort, applied to another: ``fit()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import pandas as pd

from .._backend import dask_on, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..stats._moments import group_moments
from ._cross_validate import MODELS, PENALTIES, SELECTIONS, class_codes, make_model, top_genes

__all__ = ["Classifier", "fit"]


@dataclass
class Classifier:
    """A fitted model and the genes it reads, by id.

    Attributes
    ----------
    genes : ndarray of str
        The chosen genes, in the order the model reads them.
    classes : list of str
    model : scikit-learn estimator
        Standardisation and the classifier, fitted.
    """

    genes: np.ndarray
    classes: list[str]
    model: Any

    def predict(self, cohort: CohortLike) -> pd.DataFrame:
        """Class probabilities and the predicted class of every sample of ``cohort``.

        Genes are matched by id; a cohort that lacks any of them is refused (naming them).

        Returns
        -------
        pandas.DataFrame
            Indexed by sample: ``p_<class>`` per class and ``predicted``.
        """
        data = as_cohort_matrix(cohort)
        ids = {str(g): i for i, g in enumerate(data.gene_ids)}
        missing = [g for g in self.genes if g not in ids]
        if missing:
            raise CohortexError(
                f"The cohort lacks {len(missing)} of the classifier's {len(self.genes)} genes "
                f"(first: {', '.join(missing[:5])}); predicting without them would be wrong."
            )
        columns = np.asarray([ids[g] for g in self.genes])
        x = dask_on(data.matrix, "cpu", (4096, 4096))[:, columns]
        values = np.asarray(to_host(x.compute()), dtype=np.float64)
        if np.isnan(values).any():
            raise CohortexError("The cohort has missing values in the classifier's genes.")
        probability = self.model.predict_proba(values)
        table = pd.DataFrame(
            probability,
            index=pd.Index(np.asarray(data.sample_ids), name="sample"),
            columns=[f"p_{c}" for c in self.classes],
        )
        table["predicted"] = np.asarray(self.classes, dtype=object)[probability.argmax(axis=1)]
        return table


@shared_docs
def fit(
    cohort: CohortLike,
    target: str | Any,
    *,
    k: int = 500,
    select: str = "anova",
    model: str = "logistic",
    penalty: str = "l2",
    C: float = 1.0,
    l1_ratio: float = 0.5,
    seed: int = 0,
    device: str = "auto",
) -> Classifier:
    """Train the classifier :func:`cross_validate` evaluates on all of a cohort's samples.

    Its accuracy is what :func:`cross_validate` reports with the same settings; the model
    itself is for new samples (:meth:`Classifier.predict`).

    Parameters
    ----------
    {cohort}
    target, k, select, model, penalty, C, l1_ratio, seed
        As for :func:`cross_validate`.
    {device}
    """
    if model not in MODELS or penalty not in PENALTIES or select not in SELECTIONS or k < 1:
        raise CohortexError(
            f"fit() takes a model in {MODELS}, a penalty in {PENALTIES}, a selection in "
            f"{SELECTIONS} and k >= 1; got {model!r}, {penalty!r}, {select!r}, {k}."
        )
    on = resolve_device(device)
    data = as_cohort_matrix(cohort)
    codes, classes = class_codes(data, target)
    x = dask_on(data.matrix, on, (4096, 4096))
    (moments,) = dask.compute(group_moments(x, codes, len(classes), omit_nan=True))
    if select == "welch" and len(classes) != 2:
        raise CohortexError(f"select='welch' ranks two classes; found {len(classes)}.")
    cells = [[c] for c in range(len(classes))]
    chosen = top_genes(moments, cells, min(k, x.shape[1]), select)
    kept = np.flatnonzero(codes >= 0)
    values = np.asarray(to_host(x[:, chosen].compute()), dtype=np.float64)[kept]
    if np.isnan(values).any():
        raise CohortexError(
            "The chosen genes have missing values in labelled samples; prediction needs "
            "complete values (impute or drop those genes first)."
        )
    settings = {
        "device": on,
        "model": model,
        "penalty": penalty,
        "C": C,
        "l1_ratio": l1_ratio,
        "seed": seed,
    }
    fitted = make_model(settings).fit(values, codes[kept])
    genes = np.asarray([str(g) for g in np.asarray(data.gene_ids)[chosen]])
    return Classifier(genes, classes, fitted)
