"""Cross-validated survival prediction (``predict.cross_validate_survival``): what the genes add
to the clinical variables, and the lasso at cv.glmnet's two penalty choices.

Cases, each run once (the folds are fixed by the seed; the times are single runs):

- ``GSE7390`` (the tests' 198 tumours × 76 genes, time to metastasis in months, 5 folds × 5
  repeats): the clinical variables alone (``covariates="~ age + size + er"``, fitted inside
  each training fold: the honest out-of-fold C), beside the ridge of 10 genes and the lasso
  of all 76 at ``lambda_min`` and ``lambda_1se``, each with those covariates unpenalised.
- ``store`` (a simulated 2,000 × 20,000 float32 store, 10 survival genes at log HR 0.5 per
  SD, 5 folds): the lasso of each fold's top 200 genes at ``lambda_min`` and ``lambda_1se``,
  and the default ridge of 20 genes.

Each case also predicts every held-out sample's survival at two times (``times=``: 5 and 10
years on GSE7390; 2 and 5 on the store's scale) and scores them out of fold
(``result.scores``: the Brier score's IPA against the Kaplan–Meier curve and the
time-dependent AUC, as riskRegression's Score), with Uno's C of the pooled risks.

No other tool runs beside it (scikit-survival is not installed); each step is held to R in
the tests. Usage::

    python benchmarks/survival_prediction.py [--out benchmarks/out]

Writes ``survival_prediction.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cohortex import open_cohort, predict, simulate

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "survival" / "breast_cancer.csv"


def breast_cancer() -> xr.Dataset:
    data = pd.read_csv(FIXTURE)
    genes = list(data.columns[7:])
    clinical = ["age", "size", "grade", "er", "time", "event"]
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), data[genes].to_numpy()),
            **{name: ("sample", data[name].to_numpy()) for name in clinical},
        },
        coords={"sample": data["sample"].to_numpy(), "gene": np.array(genes)},
    )


def run(name: str, cohort, time_: str, event: str, times: list[float], **options) -> dict:
    start = time.perf_counter()
    result = predict.cross_validate_survival(cohort, time_, event, times=times, **options)
    seconds = time.perf_counter() - start
    scores = result.scores
    return {
        "times": times,
        "uno": result.weighted_concordance().concordance,
        "ipa": scores["ipa"].tolist(),
        "auc": scores["auc"].tolist(),
        "case": name,
        "seconds": seconds,
        "concordance": result.concordance,
        "concordance_se": result.concordance_se,
        "covariates_concordance": result.covariates_concordance,
        "genes_per_fold": [int(result.folds["genes"].min()), int(result.folds["genes"].max())],
        "logrank": result.logrank_statistic,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    ds = breast_cancer()
    clinical = {"covariates": "~ age + size + er", "repeats": 5}
    # months, as the survival tests (ties as in the data's follow-up)
    ds["months"] = ("sample", np.ceil(ds["time"].values / 30.4375))
    years = [60.0, 120.0]
    rows.append(
        run("GSE7390 ridge, 10 genes + clinical", ds, "months", "event", years, k=10, **clinical)
    )
    for choice in ("lambda_min", "lambda_1se"):
        rows.append(
            run(
                f"GSE7390 lasso ({choice}), 76 genes + clinical",
                ds,
                "months",
                "event",
                years,
                model="lasso",
                k=76,
                lambda_choice=choice,
                **clinical,
            )
        )
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "s.zarr"
        simulate(store, 2000, 20000, survival_genes=10, log_hr=0.5, seed=3, progress=False)
        cohort = open_cohort(store)
        for choice in ("lambda_min", "lambda_1se"):
            rows.append(
                run(
                    f"store lasso ({choice}), top 200",
                    cohort,
                    "time",
                    "event",
                    [2.0, 5.0],
                    model="lasso",
                    lambda_choice=choice,
                )
            )
        rows.append(run("store ridge, top 20", cohort, "time", "event", [2.0, 5.0]))
    (args.out / "survival_prediction.json").write_text(json.dumps(rows, indent=1))
    print(
        "| case | seconds | pooled C (se) | Uno's C | clinical alone C | genes per fold | "
        "log-rank χ² | IPA at t₁, t₂ | AUC at t₁, t₂ |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        alone = row["covariates_concordance"]
        print(
            f"| {row['case']} | {row['seconds']:.1f} | {row['concordance']:.3f} "
            f"({row['concordance_se']:.3f}) | {row['uno']:.3f} | "
            f"{'–' if np.isnan(alone) else f'{alone:.3f}'} | "
            f"{row['genes_per_fold'][0]}–{row['genes_per_fold'][1]} | {row['logrank']:.1f} | "
            f"{row['ipa'][0]:.3f}, {row['ipa'][1]:.3f} | {row['auc'][0]:.3f}, {row['auc'][1]:.3f} |"
        )


if __name__ == "__main__":
    main()
