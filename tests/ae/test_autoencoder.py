"""The autoencoder on simulated cohorts with planted non-linear modules and DE genes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from cohortex import CohortexError, create_cohort, open_cohort, simulate
from cohortex.ae import Autoencoder, enrichment
from cohortex.simulate import simulate_array


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
    # bottleneck 4: the condition and the three modules are four independent sources; the
    # training settings are the defaults
    model = Autoencoder((64, 4, 64), progress=False).fit(path)
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
    assert score["variance_explained"] > pca_explained + 0.03  # 0.631 against 0.579
    # training started from PCA's reconstruction and kept its best epoch
    assert model.start_loss_ == pytest.approx(residual / scaled[held_out].size, rel=1e-4)
    assert score["mse"] == pytest.approx(
        min(h["validation_loss"] for h in model.history_), rel=1e-4
    )


def test_deep_autoencoder_beats_pca_on_samples_it_never_saw(trained):
    """Scored on samples outside the fit altogether (the validation split chose the epoch)."""
    path, ds, _ = trained
    test = np.zeros(ds.sizes["sample"], bool)
    test[np.random.default_rng(7).choice(len(test), 150, replace=False)] = True
    cohort = open_cohort(path)
    model = Autoencoder((64, 4, 64), progress=False).fit(cohort.isel(sample=~test))
    x = ds["expression"].values.astype(np.float64)
    scaled = (x - model.minimum_) / model.span_
    pca = PCA(4).fit(scaled[~test])  # every sample the model had, validation included
    held = scaled[test]
    residual = ((pca.inverse_transform(pca.transform(held)) - held) ** 2).sum()
    pca_explained = 1 - residual / ((held - held.mean(axis=0)) ** 2).sum()
    score = model.score(cohort.isel(sample=test))
    assert score["variance_explained"] > pca_explained + 0.03  # 0.656 against 0.584
    assert score["mse"] == pytest.approx(
        (
            (model.reconstruct(cohort.isel(sample=test))["expression"].values - x[test]) ** 2
            / model.span_**2
        ).mean(),
        rel=1e-4,
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
    # the code (layer 2) holds the condition: the PCA path carries its linear part
    result = model.condition_modules(path, "condition", 2, reference="normal", top=40)
    module = result["gene"].values[result["in_module"].values]
    truth = ds["gene"].values[ds["is_de"].values]
    found = enrichment(module, {"planted DE": truth}, ds["gene"].values)
    assert found["overlap"].values[0] >= 35  # of 40 module genes; 40 of 160 genes are DE
    assert found["pvalue"].values[0] < 1e-20
    assert (result["node_padj"].values < 0.05).any()
    # by default a twentieth of the genes; a module of every gene is refused
    default = model.condition_modules(path, "condition", 2, reference="normal")
    assert int(default["in_module"].sum()) == len(ds["gene"]) // 20
    chosen = np.flatnonzero(default["in_module"].values)
    assert set(chosen) == set(np.argsort(-np.abs(result["score"].values))[: len(chosen)])
    with pytest.raises(CohortexError, match=r"from 1 to 159 \(a module smaller"):
        model.condition_modules(path, "condition", 2, top=len(ds["gene"]))


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


def _old_format(payload: dict, n_hidden: int, version: str) -> dict:
    """A file as formats 1 and 2 wrote it: one nn.Sequential, the configuration of then."""
    from cohortex.ae import _model

    state = {}
    for key, tensor in payload["state"].items():
        part, index, rest = key.split(".", 2)
        position = int(index) if part == "layers" else 2 * n_hidden + int(index)
        state[f"{position}.{rest}"] = tensor
    config = json.loads(payload["config"])
    old_config = {k: config[k] for k in ("hidden", "activation", "seed", "genes", "history")}
    old = {**payload, "format": version, "state": state, "config": json.dumps(old_config)}
    old["checksum"] = _model._checksum(old, version)
    return old


def test_saved_model_checksum_covers_dtypes_and_shapes(tmp_path):
    """The same bytes re-viewed as another dtype (weights ~1e9 once converted) do not load;
    files of formats 1 and 2 (plain networks saved as one nn.Sequential) still do."""
    from cohortex.ae import _model

    x, _, _ = simulate_array(120, 20, seed=5)
    model = Autoencoder((8, 3), pca_path=False, max_epochs=2, seed=1, progress=False).fit(x)
    model.save(tmp_path / "model.pt")
    current = torch.load(tmp_path / "model.pt", weights_only=True)
    payload = _old_format(current, 2, "x")
    first_weight = next(iter(payload["state"]))
    forged = {**payload, "state": dict(payload["state"])}
    forged["state"][first_weight] = payload["state"][first_weight].view(torch.int32)
    forged["checksum"] = _model._checksum(forged, "cohortex-autoencoder-1")  # bytes unchanged
    assert forged["checksum"] == _model._checksum(payload, "cohortex-autoencoder-1")
    torch.save({**forged, "format": "cohortex-autoencoder-2"}, tmp_path / "v2.pt")
    with pytest.raises(CohortexError, match="checksum does not match"):
        Autoencoder.load(tmp_path / "v2.pt")
    torch.save({**forged, "format": "cohortex-autoencoder-1"}, tmp_path / "v1.pt")
    with pytest.raises(CohortexError, match="tensor state.layers.0.weight is torch.int32"):
        Autoencoder.load(tmp_path / "v1.pt")
    # genuine files of formats 1 and 2 still load, as the plain networks they were
    for version in ("cohortex-autoencoder-1", "cohortex-autoencoder-2"):
        torch.save(_old_format(current, 2, version), tmp_path / "o.pt")
        np.testing.assert_array_equal(
            Autoencoder.load(tmp_path / "o.pt").transform(x, 1)["activation"],
            model.transform(x, 1)["activation"],
        )


def test_format_3_files_load_as_networks_without_output_curves(tmp_path):
    """Format 3 (the PCA-path network before the output curves) records no ``output_curve``."""
    from cohortex.ae import _model

    x, _, _ = simulate_array(120, 20, modules=1, module_size=8, seed=5)
    model = Autoencoder((8, 3), output_curve=False, max_epochs=2, progress=False).fit(x)
    model.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    config = json.loads(payload["config"])
    del config["output_curve"]
    old = {**payload, "format": "cohortex-autoencoder-3", "config": json.dumps(config)}
    old["checksum"] = _model._checksum(old, "cohortex-autoencoder-3")
    torch.save(old, tmp_path / "v3.pt")
    loaded = Autoencoder.load(tmp_path / "v3.pt")
    assert loaded.pca_path and not loaded.output_curve
    np.testing.assert_array_equal(
        loaded.reconstruct(x)["expression"].values, model.reconstruct(x)["expression"].values
    )


def test_output_curves_bend_each_gene_as_documented():
    """x̂ = r + s Σⱼ aⱼ (tanh((r − μ)/s − tⱼ) − tanh(−tⱼ)) on the network's reconstruction r
    before the curves, with s the spread of each gene's PCA reconstruction on the training
    split; they start flat and are learnt."""
    from cohortex.ae._network import CURVE_KNOTS

    x, _, _ = simulate_array(400, 40, modules=2, module_size=10, seed=6)
    model = Autoencoder((16, 4, 16), max_epochs=3, progress=False).fit(x)
    network = model._network
    weight = network.curve_weight.detach().numpy().astype(np.float64)
    assert np.abs(weight).max() > 1e-3  # learnt (they start at zero)
    training = np.setdiff1d(np.arange(400), model.validation_index_)
    scaled = (x - model.minimum_) / model.span_
    pca = PCA(4).fit(scaled[training])
    spread = (pca.transform(scaled[training]) @ pca.components_).std(axis=0, ddof=1)
    scale = network.curve_scale.numpy()
    np.testing.assert_allclose(scale, spread, rtol=1e-3)
    with torch.no_grad():
        network.output_curve = False  # the same network without its curves
        flat = network(torch.as_tensor(scaled, dtype=torch.float32)).numpy().astype(np.float64)
        network.output_curve = True
    centre = network.center.numpy()
    position = (flat - centre) / scale
    bends = [np.tanh(position - t) - np.tanh(-t) for t in CURVE_KNOTS]
    expected = flat + scale * sum(weight[:, j] * bend for j, bend in enumerate(bends))
    found = model.reconstruct(x)["expression"].values  # on the expression scale
    np.testing.assert_allclose(
        (found - model.minimum_) / model.span_, expected, rtol=1e-4, atol=1e-5
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
        CohortexError,
        match="'activation' parameter must be one of sigmoid, relu, tanh, gelu, elu; got 'swish'",
    ):
        Autoencoder(activation="swish")
    with pytest.raises(CohortexError, match="'dropout' parameter of Autoencoder is out of range"):
        Autoencoder(dropout=1.0)
    with pytest.raises(CohortexError, match="'schedule' parameter must be 'cosine' or 'constant'"):
        Autoencoder(schedule="linear")
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


@pytest.mark.parametrize("route", ["read once", "read once, randomized", "streamed"])
def test_the_pca_path_starts_as_pca_of_the_training_split(route, monkeypatch):
    """Before its first step the default network reconstructs exactly as PCA of the code's
    width (scikit-learn's, on the same split and scaling), however the PCA was computed."""
    from cohortex.ae import _model

    if route == "read once, randomized":
        monkeypatch.setattr(_model, "EXACT_PCA_GENES", 0)
    if route == "streamed":
        monkeypatch.setattr(_model, "CACHE_BYTES", 0)
    x, _, _ = simulate_array(400, 60, n_de=6, modules=2, module_size=12, seed=8)
    model = Autoencoder((32, 5, 32), max_epochs=1, progress=False).fit(x)
    held = model.validation_index_
    train = np.setdiff1d(np.arange(400), held)
    scaled = (x.astype(np.float64) - model.minimum_) / model.span_
    pca = PCA(5).fit(scaled[train])
    mse = ((pca.inverse_transform(pca.transform(scaled[held])) - scaled[held]) ** 2).mean()
    # a randomized SVD (4 power iterations) lands within 0.5% of the exact subspace's error
    assert model.start_loss_ == pytest.approx(mse, rel=5e-3 if "randomized" in route else 1e-5)
    # the output curves' scale: the spread of each gene's PCA reconstruction on the split
    spread = (pca.transform(scaled[train]) @ pca.components_).std(axis=0, ddof=1)
    scale = model._network.curve_scale.numpy()
    if "randomized" in route:  # its last axes are approximate: genes differ, not the whole
        assert np.linalg.norm(scale - spread) < 0.05 * np.linalg.norm(spread)
    else:
        np.testing.assert_allclose(scale, spread, rtol=1e-4)
    # kept when training does not improve on it: the score is never worse than the start
    assert model.score()["mse"] <= model.start_loss_ * (1 + 1e-6)


def test_an_interrupted_fit_resumes_to_the_same_weights(tmp_path, monkeypatch):
    x, _, _ = simulate_array(300, 40, n_de=4, modules=2, module_size=10, seed=6)
    settings = dict(max_epochs=6, patience=6, seed=2, progress=False)
    whole = Autoencoder((16, 4, 16), **settings).fit(x)
    checkpoint = tmp_path / "run.ckpt"
    original = Autoencoder._loss
    calls = []

    def interrupted(self, *args):  # the start's loss, then one per epoch: stop in epoch 4
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Autoencoder, "_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Autoencoder((16, 4, 16), **settings).fit(x, checkpoint=checkpoint, checkpoint_every=1)
    monkeypatch.setattr(Autoencoder, "_loss", original)
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epoch"] == 3 and not (tmp_path / "run.ckpt.partial").exists()
    resumed = Autoencoder((16, 4, 16), **settings).fit(x, checkpoint=checkpoint, resume=True)
    assert resumed.history_ == whole.history_
    for a, b in zip(
        whole._network.state_dict().values(), resumed._network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    with pytest.raises(CohortexError, match=r"\(lr differ\); resume with the same ones"):
        Autoencoder((16, 4, 16), **settings, lr=1e-3).fit(x, checkpoint=checkpoint, resume=True)
    with pytest.raises(CohortexError, match="No checkpoint at"):
        Autoencoder((16, 4, 16), **settings).fit(x, checkpoint=tmp_path / "no.ckpt", resume=True)
    with pytest.raises(CohortexError, match="resume=True needs the 'checkpoint' path"):
        Autoencoder((16, 4, 16), **settings).fit(x, resume=True)


def test_dwivedi_preset_is_the_published_recipe():
    model = Autoencoder.dwivedi()
    assert model.hidden == (512, 512, 512) and model.activation == "sigmoid"
    assert (model.lr, model.weight_decay, model.batch_size) == (1e-4, 0.0, 256)
    assert not model.pca_path and model.schedule == "constant" and model.clip is None
    assert model.patience == 10  # the seed study's stopping, whatever the default's
    x, _, _ = simulate_array(200, 30, seed=9)
    small = Autoencoder.dwivedi(hidden=(16, 4, 16), max_epochs=2, progress=False).fit(x)
    assert small.hidden == (16, 4, 16) and len(small.history_) == 2
    assert isinstance(small._network.output[-1], torch.nn.Sigmoid)


def test_keeping_the_validation_rows_changes_no_weight(tmp_path, monkeypatch):
    """Above the read-once size, the validation rows come out of the scaling pass and stay on
    the device; the training sweep streams the chunks as before."""
    from cohortex.ae import _model

    path = tmp_path / "c.zarr"
    simulate(path, 300, 40, n_de=4, modules=2, module_size=10, seed=6, chunks=(64, 40))
    settings = dict(max_epochs=4, seed=1, progress=False)
    monkeypatch.setattr(_model, "CACHE_BYTES", 0)
    streamed = Autoencoder((16, 4, 16), **settings).fit(path)
    monkeypatch.setattr(_model, "CACHE_BYTES", 300 * 40 * 4 - 1)
    kept = Autoencoder((16, 4, 16), **settings).fit(path)
    assert kept._held is None  # dropped at the end of fit
    for a, b in zip(streamed.history_, kept.history_, strict=True):
        assert a["train_loss"] == b["train_loss"]
        assert a["validation_loss"] == pytest.approx(b["validation_loss"], rel=1e-5)
    for a, b in zip(streamed._network.parameters(), kept._network.parameters(), strict=True):
        assert torch.equal(a, b)


def test_reading_once_chunk_by_chunk_scales_as_the_streamed_route(tmp_path, monkeypatch):
    """A cohort that fits is filled into the device copy one stored chunk at a time; its
    scaling (training rows only) and its PCA start equal the streamed route's."""
    from cohortex.ae import _model

    path = tmp_path / "c.zarr"
    simulate(path, 300, 40, n_de=4, modules=2, module_size=10, seed=6, chunks=(64, 40))
    once = Autoencoder((16, 4, 16), max_epochs=1, seed=1, progress=False).fit(path)
    monkeypatch.setattr(_model, "CACHE_BYTES", 0)
    streamed = Autoencoder((16, 4, 16), max_epochs=1, seed=1, progress=False).fit(path)
    x = open_cohort(path)["expression"].values.astype(np.float32)
    train = np.setdiff1d(np.arange(300), once.validation_index_)
    assert np.array_equal(once.minimum_, x[train].min(axis=0))
    assert np.array_equal(once.minimum_, streamed.minimum_)
    assert np.array_equal(once.span_, streamed.span_)
    assert once.start_loss_ == pytest.approx(streamed.start_loss_, rel=1e-6)
    held = int(once.validation_index_[0])
    for row, count in ((int(train[5]), 1), (held, 2)):  # a training row, then a validation row
        x[row, 3] = np.nan
        with pytest.raises(CohortexError, match=f"holds {count} NaN values"):
            Autoencoder((16, 4, 16), max_epochs=1, seed=1, progress=False).fit(x)
    x[int(train[5]), 3] = 0.0  # a NaN in a validation row alone is found too
    with pytest.raises(CohortexError, match="holds 1 NaN values"):
        Autoencoder((16, 4, 16), max_epochs=1, seed=1, progress=False).fit(x)


def test_the_cache_budget_follows_the_device(monkeypatch):
    """A CPU keeps up to CACHE_BYTES; a GPU a sixth of its free memory, never less."""
    from cohortex.ae import _model

    gib = 1 << 30
    assert _model.cache_budget(torch.device("cpu")) == _model.CACHE_BYTES == gib
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (120 * gib, 141 * gib))
    assert _model.cache_budget(torch.device("cuda")) == 20 * gib
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * gib, 16 * gib))
    assert _model.cache_budget(torch.device("cuda")) == gib
