"""Outcome prediction from expression: cross-validated classifiers whose gene selection happens
inside each training fold (``cross_validate``), so a held-out label never shapes the model, and
the final classifier for new cohorts (``fit``, ``Classifier.predict``: genes matched by id).
"""

from ._classifier import Classifier, fit
from ._cross_validate import MODELS, SELECTIONS, CrossValidation, cross_validate

__all__ = ["MODELS", "SELECTIONS", "Classifier", "CrossValidation", "cross_validate", "fit"]
