"""The autoencoder on simulated cohorts with planted non-linear modules and DE genes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from cohortex import CohortexError, create_cohort, simulate
from cohortex.ae import Autoencoder, enrichment
from cohortex.simulate import simulate_array

SETTINGS = dict(lr=5e-3, batch_size=64, max_epochs=120, patience=15, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """1,500 samples × 160 genes: 40 DE genes (tumor vs normal), 3 modules of 40 genes."""
    path = tmp_path_factory.mktemp("ae") / "c.zarr"
    ds = simulate(
        path,
        1500,
        160,
        n_de=40,
        log2fc=(1.5, 2.5),
        modules=3,
        module_size=40,
        seed=3,
        chunks=(256, 160),
    )
    # bottleneck 4: the condition and the three modules are four independent sources
    model = Autoencoder((64, 4, 64), **SETTINGS).fit(path)
    return path, ds, model


def test_deep_autoencoder_beats_pca_at_equal_dimension(trained):
    path, ds, model = trained
    x = ds["expression"].values.astype(np.float64)
    held_out = model.validation_index_
    training = np.setdiff1d(np.arange(len(x)), held_out)
    scaled = (x - model.minimum_) / model.span_
    pca = PCA(4).fit(scaled[training])  # the same latent size, split and scaling
    reconstruction = pca.inverse_transform(pca.transform(scaled[held_out]))
    residual = ((reconstruction - scaled[held_out]) ** 2).sum()
    total = ((scaled[held_out] - scaled[held_out].mean(axis=0)) ** 2).sum()
    pca_explained = 1 - residual / total
    score = model.score()
    assert score["variance_explained"] > pca_explained + 0.01
    assert model.history_[-1]["validation_loss"] < model.history_[0]["validation_loss"]
    assert score["mse"] == pytest.approx(
        min(h["validation_loss"] for h in model.history_), rel=1e-4
    )


def test_baselines_side_by_side_and_loss_plot(trained):
    from cohortex import plot
    from cohortex.ae import baselines

    path, _, model = trained
    table = baselines(path, model, shallow=4)
    assert list(table["model"].values) == ["deep (64, 4, 64)", "pca 4", "shallow (4,)"]
    deep, pca, _ = table["variance_explained"].values
    assert table["mse"].values[0] == pytest.approx(model.score()["mse"])
    assert deep > pca
    ax = plot.loss(model)
    assert len(ax.lines) == 2 and len(ax.lines[1].get_xdata()) == len(model.history_)


def test_light_up_recovers_planted_modules(trained):
    _, ds, model = trained
    module = ds["module"].values
    change = np.abs(model.light_up(1)["change"].values)  # (node, gene)
    rng = np.random.default_rng(0)
    for m in range(3):
        best = max(roc_auc_score(module == m, change[j]) for j in range(len(change)))
        # a random gene set of the same size, scored by the same best-of-nodes rule
        fake = np.zeros(len(module), bool)
        fake[rng.choice(len(module), 40, replace=False)] = True
        random_best = max(roc_auc_score(fake, change[j]) for j in range(len(change)))
        assert best >= 0.9, (m, best)  # the stated threshold: AUROC 0.9 for the best node
        assert best > random_best + 0.2
    modules = model.gene_modules(1, top=10)
    assert len(modules) == 64 and all(len(g) == 10 for g in modules.values())
    # the autograd Jacobian at the mean state agrees in sign with lighting up, node by node
    jacobian = model.jacobian(1)["jacobian"].values
    lit = model.light_up(1)["change"].values
    agree = np.mean(np.sign(jacobian) == np.sign(lit))
    assert agree > 0.8


def test_condition_modules_are_enriched_for_the_de_genes(trained):
    path, ds, model = trained
    result = model.condition_modules(path, "condition", 1, reference="normal", top=40)
    module = result["gene"].values[result["in_module"].values]
    truth = ds["gene"].values[ds["is_de"].values]
    found = enrichment(module, {"planted DE": truth}, ds["gene"].values)
    assert found["overlap"].values[0] >= 35  # of 40 module genes; 40 of 160 genes are DE
    assert found["pvalue"].values[0] < 1e-20
    assert (result["node_padj"].values < 0.05).any()


def test_enrichment_equals_scipy():
    universe = [f"g{i}" for i in range(500)]
    module = universe[:40]
    sets = {"a": universe[20:80], "b": universe[30:35] + universe[300:330], "c": ["x", "g1"]}
    found = enrichment(module, sets, universe)
    expected = [
        stats.hypergeom.sf(20 - 1, 500, 60, 40),
        stats.hypergeom.sf(5 - 1, 500, 35, 40),
        stats.hypergeom.sf(1 - 1, 500, 1, 40),  # 'x' is outside the universe
    ]
    np.testing.assert_allclose(found["pvalue"].values, expected, rtol=1e-12)
    assert list(found["overlap"].values) == [20, 5, 1]
    combined = stats.combine_pvalues(expected, method="fisher").pvalue
    assert found.attrs["combined_pvalue"] == pytest.approx(combined, rel=1e-12)


def test_same_seed_same_weights_and_save_load(tmp_path):
    x, _, _ = simulate_array(200, 30, n_de=3, modules=1, module_size=10, seed=4)
    first = Autoencoder((16, 4), lr=1e-2, max_epochs=5, seed=7).fit(x)
    second = Autoencoder((16, 4), lr=1e-2, max_epochs=5, seed=7).fit(x)
    for a, b in zip(first._network.parameters(), second._network.parameters(), strict=True):
        assert torch.equal(a, b)
    first.save(tmp_path / "model.pt")
    loaded = Autoencoder.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(
        loaded.transform(x, 2)["activation"].values, first.transform(x, 2)["activation"].values
    )
    np.testing.assert_array_equal(
        loaded.reconstruct(x)["expression"].values, first.reconstruct(x)["expression"].values
    )
    np.testing.assert_array_equal(
        loaded.light_up(1)["change"].values, first.light_up(1)["change"].values
    )
    assert loaded.history_ == first.history_
    # a tampered file and a foreign file fail cleanly
    raw = bytearray((tmp_path / "model.pt").read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\x00" * 64
    (tmp_path / "bad.pt").write_bytes(bytes(raw))
    with pytest.raises(CohortexError, match="is not a readable cohortex autoencoder file"):
        Autoencoder.load(tmp_path / "bad.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CohortexError, match="not a cohortex autoencoder"):
        Autoencoder.load(tmp_path / "foreign.pt")


def test_saved_model_checksum_covers_dtypes_and_shapes(tmp_path):
    """The same bytes re-viewed as another dtype (weights ~1e9 once converted) do not load."""
    from cohortex.ae import _model

    x, _, _ = simulate_array(120, 20, seed=5)
    model = Autoencoder((8, 3), max_epochs=2, seed=1, progress=False).fit(x)
    model.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    first_weight = next(iter(payload["state"]))
    forged = {**payload, "state": dict(payload["state"])}
    forged["state"][first_weight] = payload["state"][first_weight].view(torch.int32)
    forged["checksum"] = _model._checksum(forged, "cohortex-autoencoder-1")  # bytes unchanged
    assert forged["checksum"] == _model._checksum(payload, "cohortex-autoencoder-1")
    torch.save({**forged, "format": "cohortex-autoencoder-2"}, tmp_path / "v2.pt")
    with pytest.raises(CohortexError, match="checksum does not match"):
        Autoencoder.load(tmp_path / "v2.pt")
    torch.save({**forged, "format": "cohortex-autoencoder-1"}, tmp_path / "v1.pt")
    with pytest.raises(CohortexError, match=f"tensor state.{first_weight} is torch.int32"):
        Autoencoder.load(tmp_path / "v1.pt")
    # a genuine format-1 file (bytes-only checksum) still loads
    genuine = {**payload, "format": "cohortex-autoencoder-1"}
    genuine["checksum"] = _model._checksum(genuine, "cohortex-autoencoder-1")
    torch.save(genuine, tmp_path / "old.pt")
    np.testing.assert_array_equal(
        Autoencoder.load(tmp_path / "old.pt").transform(x, 1)["activation"],
        model.transform(x, 1)["activation"],
    )


def test_layer_statistics_equal_the_activations_of_the_training_samples(trained):
    """Mean and maximum of every hidden node (what ``light_up`` starts from) over training."""
    path, _, model = trained
    training = np.ones(1500, dtype=bool)
    training[model.validation_index_] = False
    for layer in range(1, len(model.hidden) + 1):
        activation = model.transform(path, layer)["activation"].values[training]
        np.testing.assert_allclose(
            model.layer_mean_[layer - 1], activation.astype(np.float64).mean(axis=0), rtol=1e-5
        )
        np.testing.assert_allclose(model.layer_max_[layer - 1], activation.max(axis=0), rtol=1e-5)


def test_bad_input(tmp_path):
    with pytest.raises(
        CohortexError, match="'activation' parameter must be one of sigmoid, relu, tanh; got 'gelu'"
    ):
        Autoencoder(activation="gelu")
    with pytest.raises(CohortexError, match="not fitted yet"):
        Autoencoder().light_up(1)
    x = np.random.default_rng(0).normal(size=(50, 8))
    x[3, 2] = np.nan
    with pytest.raises(CohortexError, match="holds 1 NaN values"):
        Autoencoder((4,), max_epochs=1).fit(x)
    model = Autoencoder((4,), max_epochs=1).fit(np.nan_to_num(x))
    with pytest.raises(CohortexError, match="'layer' parameter must be between 1 and 1; got 2"):
        model.light_up(2)
    create_cohort(tmp_path / "other.zarr", np.zeros((5, 3)))
    with pytest.raises(CohortexError, match="lacks 5 of the model's genes \\(e.g. G4, G5"):
        model.transform(tmp_path / "other.zarr")
