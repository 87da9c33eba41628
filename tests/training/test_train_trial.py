"""train-trial: every variant trains, metric lines parse, checkpoints reload, failures fail."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from aurora_mlops.cli import main
from aurora_mlops.errors import TrainingError
from aurora_mlops.katib_metrics import KATIB_METRIC_PATTERN
from aurora_mlops.training import build_trial_model, resolve_params, train_trial
from aurora_mlops.variants import VARIANTS, get_variant, load_weights

VARIANT_NAMES = list(VARIANTS)


@pytest.mark.parametrize("variant", VARIANT_NAMES, ids=VARIANT_NAMES)
def test_every_variant_trains_and_loss_falls(
    variant: str, synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    data = synthetic_data(variant)
    out = io.StringIO()
    params = resolve_params(
        "smoke",
        {
            "epochs": 2,
            "steps_per_epoch": 10,
            "patience": 5,
            "learning_rate": 3e-3,
            "warmup_steps": 2,
        },
    )
    result = train_trial(
        variant=get_variant(variant),
        data=data,
        output_dir=tmp_path / "t",
        params=params,
        profile="smoke",
        tracking=False,
        stdout=out,
    )
    trial = json.loads(result.trial_json.read_text())
    losses = trial["step_losses"]
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, losses

    # Katib collects exactly what was printed: every epoch's objective, parseable by its regex.
    found = re.findall(KATIB_METRIC_PATTERN, out.getvalue())
    names = [m[0] for m in found]
    assert names.count("val_score") == 2 and names.count("epoch") == 2
    scores = [float(m[1]) for m in found if m[0] == "val_score"]
    assert [round(s, 5) for s in scores] == [round(h["val_score"], 5) for h in trial["history"]]

    # The checkpoint is what trial.json says it is.
    digest = hashlib.sha256(result.checkpoint.read_bytes()).hexdigest()
    assert trial["checkpoint"]["sha256"] == digest
    assert trial["status"] == "succeeded" and trial["variant"] == variant
    assert (tmp_path / "t" / "norm_stats.json").is_file()
    assert not list((tmp_path / "t").glob(".*tmp"))


def test_checkpoint_reloads_to_the_same_predictions(
    synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    from aurora_mlops.data import WindowDataset, open_dataset

    spec = get_variant("medium-res")
    data = synthetic_data("medium-res")
    params = resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 6})
    result = train_trial(
        variant=spec,
        data=data,
        output_dir=tmp_path / "t",
        params=params,
        profile="smoke",
        tracking=False,
        stdout=io.StringIO(),
    )
    trial = json.loads(result.trial_json.read_text())
    ds = open_dataset(data)
    val = WindowDataset(ds, spec, tuple(trial["data"]["splits"]["val"]), history=2)
    batch, _ = val.batch([0, 1])

    def predict(load: bool) -> torch.Tensor:
        torch.manual_seed(123)
        model = build_trial_model(spec, params, "smoke")
        if load:
            load_weights(model, spec, result.checkpoint)
        model.eval()
        with torch.no_grad():
            return model(batch).surf_vars["2t"]

    first, second, fresh = predict(True), predict(True), predict(False)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert not torch.allclose(first, fresh), "loading the checkpoint changed nothing"
    # The saved weights are the best epoch's: the model reloaded from them gives the same state.
    state = torch.load(result.checkpoint, weights_only=True)
    model = build_trial_model(spec, params, "smoke")
    load_weights(model, spec, result.checkpoint)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


BAD_PARAMS = [
    ("unknown", ["--learning_rat=1e-3"], "unknown trial parameter"),
    ("negative-lr", ["--learning_rate=-1"], "--learning_rate"),
    ("bad-lora-mode", ["--lora_mode=sometimes"], "--lora_mode"),
    ("embed-not-divisible", ["--embed_dim=30", "--num_heads=4"], "divisible"),
    ("spectral-too-big", ["--spectral_loss_weight=0.5"], "spectral_loss_weight"),
    ("spectral-wrong-variant", ["--spectral_loss_weight=0.05"], "ocean-waves only"),
    ("coastal-wrong-variant", ["--coastal_conditioning=on"], "ocean-waves only"),
    ("unknown-variable-weight", ["--variable_weights=pm9:2"], "variable_weights"),
    ("lead-weights-short", ["--rollout_steps=3", "--lead_weights=1,1"], "lead_weights"),
    ("zero-batch", ["--batch_size=0"], "--batch_size"),
    ("dangling-flag", ["--learning_rate"], "needs a value"),
    ("bad-depths", ["--encoder_depths=1,0"], "depths"),
]


@pytest.mark.parametrize(
    ("args", "phrase"), [b[1:] for b in BAD_PARAMS], ids=[b[0] for b in BAD_PARAMS]
)
def test_bad_params_fail_before_training(
    args: list[str],
    phrase: str,
    synthetic_data: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "trial"
    code = main(
        [
            "train-trial",
            "--variant",
            "medium-res",
            "--data",
            str(synthetic_data("medium-res")),
            "--output",
            str(out),
            "--profile",
            "smoke",
            "--no-tracking",
            *args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert phrase in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "model.ckpt").exists() and not (out / "trial.json").exists()


def test_nan_loss_fails_the_trial(synthetic_data: Callable[..., Path], tmp_path: Path) -> None:
    params = resolve_params("smoke", {"epochs": 2, "steps_per_epoch": 4})
    with pytest.raises(TrainingError, match="became nan at epoch 0 step 2"):
        train_trial(
            variant=get_variant("medium-res"),
            data=synthetic_data("medium-res"),
            output_dir=tmp_path / "t",
            params=params,
            profile="smoke",
            tracking=False,
            stdout=io.StringIO(),
            fail_on_step=lambda step: step == 2,
        )
    assert not (tmp_path / "t" / "model.ckpt").exists()
    assert not (tmp_path / "t" / "trial.json").exists()
    failure = json.loads((tmp_path / "t" / "failure.json").read_text())
    assert failure["status"] == "failed" and "nan" in failure["error"]


def test_nan_in_the_data_fails_through_the_cli(
    synthetic_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import xarray as xr

    ds = xr.open_dataset(synthetic_data("medium-res")).load()
    ds["msl"][:] = float("nan")  # every input NaN: the model's output is NaN where targets exist
    ds["msl"].values[-1] = 101_000.0
    bad = tmp_path / "nan.nc"
    ds.to_netcdf(bad)
    code = main(
        [
            "train-trial",
            "--variant",
            "medium-res",
            "--data",
            str(bad),
            "--output",
            str(tmp_path / "t"),
            "--profile",
            "smoke",
            "--no-tracking",
            "--epochs=1",
            "--steps_per_epoch=2",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "training loss became nan" in err
    assert not (tmp_path / "t" / "model.ckpt").exists()


def test_list_params_shows_every_parameter_with_the_profile_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aurora_mlops.training import TrialParams

    assert main(["train-trial", "--list-params", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines()[1:]}
    assert listed == set(TrialParams.model_fields)
    row = next(line for line in out.splitlines() if line.startswith("learning_rate "))
    assert "0.003" in row and ">0" in row and "<=1.0" in row
    with pytest.raises(SystemExit) as exc:  # otherwise the usual required flags, as argparse does
        main(["train-trial", "--data", "x.nc"])
    assert exc.value.code == 2
    assert "required: --variant, --output" in capsys.readouterr().err


def test_from_sweep_takes_the_best_parameters_and_flags_override_them(
    synthetic_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    best = {"parameterAssignments": [{"name": "learning_rate", "value": "0.002"},
                                     {"name": "weight_decay", "value": "0.01"},
                                     {"name": "drop_path", "value": "0.05"}]}
    (sweep / "best.json").write_text(json.dumps(best))
    base = ["train-trial", "--variant", "medium-res", "--data",
            str(synthetic_data("medium-res")), "--profile", "smoke", "--no-tracking"]
    code = main([*base, "--output", str(tmp_path / "t"), "--from-sweep", str(sweep),
                 "--learning_rate=0.001", "--epochs=1", "--steps_per_epoch=2"])
    assert code == 0
    params = json.loads((tmp_path / "t" / "trial.json").read_text())["params"]
    assert params["learning_rate"] == 0.001  # the flag wins
    assert params["weight_decay"] == 0.01 and params["drop_path"] == 0.05  # from the sweep
    capsys.readouterr()
    code = main([*base, "--output", str(tmp_path / "u"), "--from-sweep", str(tmp_path)])
    assert code == 1
    assert "no best.json" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()
