"""Outcome prediction from expression: cross-validated classifiers whose gene selection happens
inside each training fold (``cross_validate``), so a held-out label never shapes the model, and
the final classifier for new cohorts (``fit``, ``Classifier.predict``: genes matched by id);
cross-validated survival prediction by a Cox signature (ridge or lasso) chosen and fitted
inside each training fold (``cross_validate_survival``) and the final signature for new
cohorts (``fit_survival``).
"""

from ._classifier import Classifier, fit
from ._cross_validate import MODELS, SELECTIONS, CrossValidation, cross_validate
from ._survival import (
    RIDGE_GRID,
    SURVIVAL_MODELS,
    SurvivalCrossValidation,
    cross_validate_survival,
    fit_survival,
)

__all__ = [
    "MODELS",
    "RIDGE_GRID",
    "SELECTIONS",
    "SURVIVAL_MODELS",
    "Classifier",
    "CrossValidation",
    "SurvivalCrossValidation",
    "cross_validate",
    "cross_validate_survival",
    "fit",
    "fit_survival",
]
