"""Outcome prediction from expression: cross-validated classifiers whose gene selection happens
inside each training fold (``cross_validate``), so a held-out label never shapes the model.
"""

from ._cross_validate import MODELS, CrossValidation, cross_validate

__all__ = ["MODELS", "CrossValidation", "cross_validate"]
