"""Survival analysis of expression cohorts: per-gene Cox models (``cox``) and their tests of
proportional hazards (``cox_zph``), one model of several genes and covariates (``fit_cox``,
a prognostic signature that scores new samples), the lasso/elastic-net Cox path of many
genes with its cross-validated penalty (``coxnet``, held to R's glmnet), log-rank tests
(``logrank``), each gene's best cutpoint with p-values that allow for the search (``cutpoint``,
R's maxstat), survival compared between groups of samples (``compare_groups``, R's
``survdiff``), Kaplan–Meier curves (``kaplan_meier``) with their medians and restricted means
(``median_survival``), the cumulative incidence of competing causes with Gray's test
(``cumulative_incidence``) and their Fine–Gray regression (``fine_gray``; per gene
``fine_gray_genes``), as R's ``cmprsk``, and the concordance of a risk score (``concordance``:
Harrell's C, Uno's with time weights), held to R's ``survival`` package.

Outcomes are sample variables (or arrays): a follow-up ``time`` and an ``event`` indicator
(1: the event, 0: censored), optionally ``strata``. They are checked first, with an error that
names the first bad sample (missing, negative or non-0/1 values).
"""

from ._compare import GroupComparison, compare_groups
from ._competing import CumulativeIncidence, cumulative_incidence
from ._concordance import TIME_WEIGHTS, Concordance, concordance
from ._cox import TIES, cox
from ._cox_zph import cox_zph
from ._coxnet import CoxnetModel, coxnet
from ._cutpoint import CUTPOINT_PVALUES, cutpoint
from ._fine_gray import FineGrayModel, fine_gray, fine_gray_genes
from ._fit_cox import CoxModel, fit_cox
from ._kaplan_meier import kaplan_meier, median_survival
from ._logrank import logrank
from ._scores import calibration, time_dependent_scores

__all__ = [
    "CUTPOINT_PVALUES",
    "TIES",
    "TIME_WEIGHTS",
    "Concordance",
    "CoxModel",
    "CoxnetModel",
    "CumulativeIncidence",
    "FineGrayModel",
    "GroupComparison",
    "calibration",
    "compare_groups",
    "concordance",
    "cox",
    "cox_zph",
    "coxnet",
    "cumulative_incidence",
    "cutpoint",
    "fine_gray",
    "fine_gray_genes",
    "fit_cox",
    "kaplan_meier",
    "logrank",
    "median_survival",
    "time_dependent_scores",
]
