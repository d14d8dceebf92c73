"""timm checkpoints and models: features against timm itself, one image at a time.

The checkpoints are tiny random timm models (a ViT on 32x32 images, and timm's test_resnet with
a 32x32 data config) saved with timm's own ``save_for_hf`` (config.json + model.safetensors), as
local folders and as Hub repos on the local Hub server. Each reference is computed directly with
timm, batch size 1: ``timm.create_model("local-dir:..." or "hf-hub:...", pretrained=True)``,
timm's eval transform of its data config, and ``forward_head(forward_features(x),
pre_logits=True)`` per image (``forward_intermediates`` averaged over positions for the stages,
``model(x)`` for the logits).
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from tiny_models import digits

import hf_logme
from hf_logme import search_candidates
from hf_logme.errors import UnsafeWeightsError, UnsupportedModelError
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.features import load_model


@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")


def _build(timm, kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "vit":
        return timm.create_model(
            "vit_tiny_patch16_224",
            pretrained=False,
            num_classes=3,
            img_size=32,
            patch_size=8,
            embed_dim=16,
            depth=2,
            num_heads=2,
        )
    return timm.create_model(
        "test_resnet",  # timm's own tiny ResNet for tests (stages of 32 to 192 channels)
        pretrained=False,
        num_classes=3,
        pretrained_cfg_overlay={"input_size": (3, 32, 32)},
    )


@pytest.fixture(scope="module")
def folders(timm, tmp_path_factory):
    """kind -> a folder written by timm's save_for_hf (config.json + model.safetensors)."""
    from timm.models import save_for_hf

    root = tmp_path_factory.mktemp("timm")
    out = {}
    for kind in ("vit", "resnet"):
        save_for_hf(_build(timm, kind), str(root / kind), safe_serialization=True)
        out[kind] = root / kind
    return out


@pytest.fixture(scope="module")
def images():
    return digits(12)


def _reference(timm, name, data, *, layers="last", logits=False):
    """Features by timm itself, one image at a time."""
    from timm.data import create_transform, resolve_model_data_config

    model = timm.create_model(name, pretrained=True).eval()
    transform = create_transform(**resolve_model_data_config(model))
    rows = []
    with torch.no_grad():
        for image in data["image"]:
            x = transform(image.convert("RGB"))[None]
            if logits:
                rows.append(model(x)[0])
            elif layers == "all":
                final, stages = model.forward_intermediates(x)
                rows.append(
                    [s.mean(dim=(2, 3))[0] for s in stages]
                    + [model.forward_head(final, pre_logits=True)[0]]
                )
            else:
                rows.append(model.forward_head(model.forward_features(x), pre_logits=True)[0])
    if layers == "all" and not logits:
        return {i: torch.stack([r[i] for r in rows]) for i in range(len(rows[0]))}
    return torch.stack(rows)


def _add_to_hub(hub, repo_id, folder):
    return hub.add_repo(
        repo_id,
        folder,
        library_name="timm",
        pipeline_tag="image-classification",
        tags=("timm",),
        downloads=10,
    )


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_folder_matches_timm_one_image_at_a_time(timm, folders, images, kind):
    out = hf_logme.extract_features(str(folders[kind]), images, batch_size=5, progress=False)
    assert out.pooling == "model" and "pre_logits" in out.pooling_reason
    reference = _reference(timm, f"local-dir:{folders[kind]}", images)
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_hub_id_matches_timms_own_hf_hub_loader(timm, hub, folders, images):
    _add_to_hub(hub, "timm/vit-test", folders["vit"])
    out = hf_logme.extract_features("timm/vit-test", images, batch_size=4, progress=False)
    assert out.revision == hub.repo("timm/vit-test").sha
    reference = _reference(timm, "hf-hub:timm/vit-test", images)
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_layers_all_are_the_stages_then_the_pooled_features(timm, folders, images, kind):
    out = hf_logme.extract_features(
        str(folders[kind]), images, layers="all", batch_size=5, progress=False
    )
    reference = _reference(timm, f"local-dir:{folders[kind]}", images, layers="all")
    assert sorted(out.features) == sorted(reference)
    for index, expected in reference.items():
        torch.testing.assert_close(out.features[index], expected, rtol=1e-4, atol=1e-5)
    if kind == "resnet":  # CNN stages differ in width
        assert out.dim == {i: v.shape[1] for i, v in reference.items()}


def test_source_predictions_are_the_heads_logits(timm, folders, images):
    out = hf_logme.extract_features(
        str(folders["vit"]), images, source_predictions=True, batch_size=5, progress=False
    )
    reference = _reference(timm, f"local-dir:{folders['vit']}", images, logits=True)
    torch.testing.assert_close(out.logits, reference, rtol=1e-4, atol=1e-5)
    assert out.logits_reason == ""


def test_model_object_uses_its_own_data_config(timm, images):
    from timm.data import create_transform
    from timm.data.model_config import resolve_input_data_config

    model = _build(timm, "vit", seed=3).eval()
    out = hf_logme.extract_features(model, images, progress=False)
    assert out.model_id == "vit_tiny_patch16_224"
    transform = create_transform(**resolve_input_data_config(model))  # 32x32, as it was built
    with torch.no_grad():
        reference = torch.stack(
            [
                model.forward_head(
                    model.forward_features(transform(i.convert("RGB"))[None]), pre_logits=True
                )[0]
                for i in images["image"]
            ]
        )
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_pixel_arrays_give_the_same_features_as_pil_images(timm, folders, images):
    import datasets

    arrays = datasets.Dataset.from_dict(
        {
            "image": [np.asarray(i.convert("RGB")) for i in images["image"]],
            "label": images["label"],
        }
    )
    from_pil = hf_logme.extract_features(str(folders["vit"]), images, progress=False)
    from_arrays = hf_logme.extract_features(str(folders["vit"]), arrays, progress=False)
    torch.testing.assert_close(from_arrays.features, from_pil.features)


def test_pickle_weights_need_the_opt_in(timm, folders, images, tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(folders["vit"], folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(UnsafeWeightsError, match="use_safetensors=False"):
        hf_logme.extract_features(str(folder), images, progress=False)
    out = hf_logme.extract_features(str(folder), images, use_safetensors=False, progress=False)
    reference = hf_logme.extract_features(str(folders["vit"]), images, progress=False)
    torch.testing.assert_close(out.features, reference.features)


def test_an_architecture_timm_lacks_fails_before_the_weights(timm, hub, folders, tmp_path):
    folder = tmp_path / "unknown"
    shutil.copytree(folders["vit"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["architecture"] = "no_such_timm_net"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="no architecture 'no_such_timm_net'"):
        load_model(str(folder))
    _add_to_hub(hub, "timm/unknown-net", folder)
    ranking = hf_logme.rank_models(["timm/unknown-net"], digits(12), cache=False, progress=False)
    assert ranking.rows[0].status == "skipped"
    assert "no_such_timm_net" in ranking.rows[0].reason
    assert "model.safetensors" not in hub.downloads("timm/unknown-net")


def test_options_a_timm_model_has_no_meaning_for_are_refused(timm, folders, images):
    with pytest.raises(ValueError, match="pooled by its own head.*pooling='auto'"):
        hf_logme.extract_features(str(folders["vit"]), images, pooling="mean", progress=False)


def test_without_timm_a_ranking_says_how_to_install_it(hub, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    ranking = hf_logme.rank_models(["other/timm-net"], digits(12), cache=False, progress=False)
    row = ranking.rows[0]
    assert row.status == "skipped"
    assert "hf-logme[timm]" in row.reason
    assert "model.safetensors" not in hub.downloads("other/timm-net")


def test_search_lists_timm_checkpoints(timm, hub, folders):
    _add_to_hub(hub, "timm/vit-test", folders["vit"])
    found = search_candidates(library="timm", limit=10)
    ids = [c.id for c in found]
    assert "timm/vit-test" in ids and "other/timm-net" in ids
    assert all(c.is_timm and c.loadable for c in found)


def test_rank_models_scores_timm_checkpoints_and_caches_them(timm, hub, folders, tmp_path):
    _add_to_hub(hub, "timm/vit-test", folders["vit"])
    _add_to_hub(hub, "timm/resnet-test", folders["resnet"])
    data = digits(24)
    models = ["timm/vit-test", "timm/resnet-test"]
    first = hf_logme.rank_models(models, data, cache_dir=tmp_path / "cache", progress=False)
    rows = {r.model: r for r in first.rows}
    assert all(r.status == "ok" and not r.cached for r in rows.values()), first.rows
    for repo_id in models:  # the ranking's score: LogME of timm's own features
        reference = _reference(timm, f"hf-hub:{repo_id}", data)
        expected = hf_logme.logme(
            reference.double(), np.asarray(data["label"]), intercept=True, prior=RANKING_PRIOR
        )
        assert rows[repo_id].score == pytest.approx(expected, rel=1e-4, abs=1e-5)
        assert rows[repo_id].dim == reference.shape[1]
        assert rows[repo_id].num_parameters == sum(
            p.numel() for p in timm.create_model(f"hf-hub:{repo_id}").state_dict().values()
        )
    again = hf_logme.rank_models(models, data, cache_dir=tmp_path / "cache", progress=False)
    assert all(r.cached for r in again.rows)
    assert {r.model: r.score for r in again.rows} == {r.model: r.score for r in first.rows}


def test_rank_models_best_and_mean_layers(timm, folders):
    data = digits(24)
    best = hf_logme.rank_models(
        [str(folders["vit"]), str(folders["resnet"])],
        data,
        layers="best",
        cache=False,
        progress=False,
    )
    for row in best.rows:
        assert row.status == "ok"
        assert row.score == max(row.layer_scores.values())
    vit_stages = _reference(timm, f"local-dir:{folders['vit']}", data, layers="all")
    rows = {r.model: r for r in best.rows}
    assert len(rows[str(folders["vit"])].layer_scores) == len(vit_stages)
    mean = hf_logme.rank_models(
        [str(folders["vit"]), str(folders["resnet"])],
        data,
        layers="mean",
        cache=False,
        progress=False,
    )
    rows = {r.model: r for r in mean.rows}
    vit, resnet = rows[str(folders["vit"])], rows[str(folders["resnet"])]
    expected = hf_logme.logme(
        torch.stack(list(vit_stages.values())).mean(0).double(),
        np.asarray(data["label"]),
        intercept=True,
        prior=RANKING_PRIOR,
    )
    assert vit.status == "ok" and vit.score == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert resnet.status == "skipped" and "differ in width" in resnet.reason


def test_rank_models_takes_timm_objects(timm, folders):
    model = _build(timm, "vit", seed=5).eval()
    ranking = hf_logme.rank_models(
        [model, str(folders["resnet"])], digits(24), cache=False, progress=False
    )
    assert {r.model for r in ranking.rows} == {"vit_tiny_patch16_224", str(folders["resnet"])}
    assert all(r.status == "ok" for r in ranking.rows)


def test_racing_timm_checkpoints_scores_each_on_its_prefix_of_the_race_order(timm, folders):
    from hf_logme.racing import race_order

    models = [str(folders["vit"]), str(folders["resnet"])]
    data = digits(48)
    raced = hf_logme.rank_models(
        models, data, race=True, race_first_block=12, cache=False, progress=False
    )
    assert raced.options["race_rounds"][0] == 12
    labels = np.asarray(data["label"])
    order = race_order(len(data), seed=0, classes=labels)
    for row in raced.rows:  # LogME of timm's own features on the rows the race gave it
        assert row.status == "ok", row.reason
        assert row.num_samples in raced.options["race_rounds"]
        rows = order[: row.num_samples]
        reference = _reference(timm, f"local-dir:{row.model}", data)[torch.from_numpy(rows)]
        expected = hf_logme.logme(
            reference.double(), labels[rows], intercept=True, prior=RANKING_PRIOR
        )
        assert row.score == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("race", [False, True])
def test_two_processes_rank_timm_checkpoints_like_one(timm, folders, race):
    from test_ranking_distributed import run_two_processes

    models = [str(folders["vit"]), str(folders["resnet"])]
    options = {"distribute": "samples"}
    if race:
        options.update(race=True, race_first_block=12)
    one = hf_logme.rank_models(models, digits(48), cache=False, progress=False, **options)
    both = run_two_processes(models, data="digits", **options)
    assert both[0] == both[1]  # every process returns the same ranking
    rows = {row["model"]: row for row in both[0]["rows"]}
    for row in one.rows:
        other = rows[row.model]
        assert other["status"] == row.status == "ok"
        assert other["num_samples"] == row.num_samples
        assert other["dropped_after"] == row.dropped_after
        assert other["score"] == pytest.approx(row.score, rel=1e-6)


def test_stages_without_forward_intermediates_come_from_feature_info(timm, folders, images):
    model = timm.create_model(f"local-dir:{folders['resnet']}", pretrained=True).eval()
    model.forward_intermediates = None  # as an architecture that predates the API
    out = hf_logme.extract_features(model, images, layers="all", batch_size=5, progress=False)
    reference = _reference(timm, f"local-dir:{folders['resnet']}", images, layers="all")
    assert sorted(out.features) == sorted(reference)
    for index, expected in reference.items():
        torch.testing.assert_close(out.features[index], expected, rtol=1e-4, atol=1e-5)


def test_stages_need_forward_intermediates_or_feature_info(timm, images):
    model = _build(timm, "resnet").eval()
    model.forward_intermediates = None
    model.feature_info = []
    with pytest.raises(ValueError, match="neither forward_intermediates nor a feature_info"):
        hf_logme.extract_features(model, images, layers="all", progress=False)
    assert hf_logme.extract_features(model, images, progress=False).features.shape[0] == len(images)
