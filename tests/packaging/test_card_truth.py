"""A model card says what its model is: which data, which weights, what budget.

The smoke packages of the session (every variant, trained from scratch on synthetic data for
two steps) used to open with the published checkpoint's description ("fine-tuned on ..."),
print parameters with float noise and ``None`` rows, and show none of the evaluation's
pictures.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from aurora_mlops.packaging import package_model
from aurora_mlops.packaging._card import fmt_value
from aurora_mlops.variants import VARIANTS

pytestmark = pytest.mark.slow

#: Float noise: a run of zeros or nines before a last digit (0.043750000000000004).
NOISE = re.compile(r"\d\.\d*(0{6,}|9{6,})\d")


def _hyperparameters(card: str) -> dict[str, str]:
    lines = card.split("| parameter | value |", 1)[1].splitlines()[2:]
    rows = [ln.strip("|").split("|") for ln in lines if ln.startswith("|")]
    return {k.strip(): v.strip().strip("`") for k, v in rows}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_smoke_card_says_what_its_model_is(
    variant: str, packaged_models: dict[str, dict[str, Path]],
) -> None:
    paths = packaged_models[variant]
    art = paths["package"] / "artifacts"
    card = (art / "MODEL_CARD.md").read_text()
    trial = json.loads((paths["trial"] / "trial.json").read_text())
    spec = VARIANTS[variant]
    # Not the published checkpoint's description: this model never saw its data.
    assert spec.description not in card and "fine-tuned on" not in card
    assert "synthetic data (aurora-mlops' generator, seed 1)" in card  # conftest's seed
    assert f"trained from scratch, not from the published checkpoint `{spec.checkpoint_name}`" \
        in card
    assert f"| budget | {trial['timings']['total_train_steps']} optimiser steps (1 epoch of 2 " \
        "steps" in card
    # No None rows and no float noise; the unset parameters named once, as unset.
    params = _hyperparameters(card)
    assert not [ln for ln in card.splitlines() if ln.startswith("|") and "None" in ln]
    assert not NOISE.search(card)
    unset = sorted(k for k, v in trial["params"].items() if v in (None, {}, []))
    assert unset and not set(unset) & set(params)
    assert f"Not set (the variant's own defaults apply): {', '.join(unset)}." in card
    assert set(params) | set(unset) == set(trial["params"])


@pytest.mark.parametrize("variant", ["medium-res", "ocean-waves"])
def test_the_card_shows_the_evaluation_scorecards(
    variant: str, packaged_models: dict[str, dict[str, Path]],
) -> None:
    paths = packaged_models[variant]
    art = paths["package"] / "artifacts"
    card, html = (art / "MODEL_CARD.md").read_text(), (art / "model_card.html").read_text()
    pictures = sorted(p.name for p in paths["eval"].glob("scorecard_model_vs_*.png"))
    assert "scorecard_model_vs_persistence.png" in pictures
    for name in pictures:
        assert f"]({name})" in card and f'<img src="{name}"' in html
        assert (art / name).read_bytes() == (paths["eval"] / name).read_bytes()
    # Persistence, the first baseline of the RMSE table, comes first.
    assert card.index("](scorecard_model_vs_persistence.png)") == min(
        card.index(f"]({name})") for name in pictures)


def test_a_fine_tuned_resumed_trial_on_real_data_says_so(
    packaged_models: dict[str, dict[str, Path]], tmp_path: Path,
) -> None:
    """The same checkpoint, recorded as a hub-initialised trial resumed from an earlier rung,
    with a noisy learning rate, on a dataset that the synthetic generator did not mark."""
    import xarray as xr

    paths = packaged_models["medium-res"]
    trial_dir = tmp_path / "trial"
    shutil.copytree(paths["trial"], trial_dir)
    trial = json.loads((trial_dir / "trial.json").read_text())
    trial["params"]["learning_rate"] = 0.043750000000000004
    trial["init"] = "hub"
    trial["resumed_from"] = {"path": "/runs/rung-0", "epochs": 1, "train_state_sha256": "0" * 64}
    trial["timings"]["total_train_steps"] = trial["timings"]["train_steps"] + 4
    (trial_dir / "trial.json").write_text(json.dumps(trial))
    with xr.open_dataset(paths["data"]) as ds:
        real = ds.load()
    del real.attrs["generator"]
    real.to_netcdf(tmp_path / "real.nc")
    out = tmp_path / "pkg"
    package_model(trial_dir, variant="medium-res", out=out, eval_dir=paths["eval"],
                  data=tmp_path / "real.nc")
    card = (out / "artifacts" / "MODEL_CARD.md").read_text()
    spec = VARIANTS["medium-res"]
    assert f"| started from | the published checkpoint `{spec.checkpoint_name}` " \
        f"({spec.description.rstrip('.')}) |" in card
    assert "| trained on | real data (not made by aurora-mlops' synthetic generator) |" in card
    steps = trial["timings"]["total_train_steps"]
    assert f"| budget | {steps} optimiser steps" in card
    assert "resumed from `/runs/rung-0` after its 1 epoch, whose 4 steps are counted" in card
    assert _hyperparameters(card)["learning_rate"] == "0.04375" and not NOISE.search(card)


@pytest.mark.parametrize(("value", "shown"), [
    (0.043750000000000004, "0.04375"),
    (0.1 + 0.2, "0.3"),
    (3e-4, "0.0003"),
    (1e-05, "1e-05"),
    (1.0, "1.0"),
    (float("nan"), "nan"),
    ([0.1 + 0.2, 1.0, 2], "0.3, 1.0, 2"),
    ({"2t": 0.30000000000000004, "msl": 2.0}, "2t: 0.3, msl: 2.0"),
    (True, "True"),
    ("mae", "mae"),
], ids=str)
def test_parameter_values_print_without_float_noise(value: object, shown: str) -> None:
    assert fmt_value(value) == shown
