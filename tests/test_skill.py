"""Per-variant skill floors of a short smoke fit, and one test per defect that once broke it.

Each variant is trained briefly (:data:`SKILL_FIT`) on the test session's synthetic data (seed 1),
evaluated through the real ``aurora-mlops evaluate`` against persistence and climatology, and
held to :data:`FLOORS`: the fraction of variable x level x lead RMSE targets won against
climatology, the headline variables' first-lead RMSE against persistence, and events in every
event table (a defined F1). The floors
sit below what this code measured on this seed (in the comments) so that small numerical
differences between machines do not flip them, and far above what the defects tested below
gave (air pollution's first lead 80x worse than persistence, high-res 21 % of targets, empty
event tables).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aurora_mlops.cli import main
from aurora_mlops.training import resolve_params, train_trial
from aurora_mlops.variants import VARIANTS, get_variant

#: The fit: 80 steps, a few seconds to half a minute per variant on one core.
SKILL_FIT = {"epochs": 2, "steps_per_epoch": 40, "patience": 2, "seed": 0}
#: Its evaluation.
SKILL_EVAL = ["--lead-steps", "2", "--max-inits", "3"]


@dataclass(frozen=True)
class Floor:
    """What the :data:`SKILL_FIT` model of a variant must reach (measured values in FLOORS).

    Attributes:
        vs_climatology: Fewest RMSE targets won against climatology (a fraction).
        headline: Largest first-lead RMSE ratio model / persistence per headline variable.
    """

    vs_climatology: float
    headline: dict[str, float]
    vs_persistence: float = 0.0
    best_f1: float = 0.3


#: Floors set below the values this code measured with seed 0 on the test session's data (seed 1):
#: medium-res won 61 % of targets vs climatology and 11 % vs persistence, 2t 0.95x and msl 1.72x
#: persistence at 6 h; high-res 55 %, 13 %, 0.94x, 1.83x; air pollution 27 %, 31 %, pm2p5
#: 0.93x at 12 h; ocean waves 53 %, 3 % (2 of 76 targets: 10v_wave 0.97x, 10v 0.99x at 12 h, so
#: its floor asks for one), swh 2.66x at 6 h. A model that copies persistence wins
#: no target against it (and 51-88 % against climatology, with a 1.0x first-lead ratio), so
#: the wins against persistence are what tell a trained model from a copy: the negative control
#: below holds the floors to that. Eighty steps are not enough to beat persistence on msl or
#: swh; make run's 1500-step models beat it on every headline variable (msl 65 vs 117 Pa for
#: medium-res, swh 0.16 vs 0.22 m).
FLOORS: dict[str, Floor] = {
    "medium-res": Floor(0.52, {"2t": 1.05, "msl": 1.95}, vs_persistence=0.07),
    "high-res": Floor(0.47, {"2t": 1.05, "msl": 2.05}, vs_persistence=0.08),
    "air-pollution": Floor(0.22, {"pm2p5": 1.05}, vs_persistence=0.2),
    "ocean-waves": Floor(0.45, {"swh": 3.0}, vs_persistence=0.01),
}


@pytest.fixture(scope="module")
def skill_evals(
    synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """``{variant: metrics.json}`` of the :data:`SKILL_FIT` model of every variant."""
    root = tmp_path_factory.mktemp("skill")
    out: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        data = synthetic_data(variant)
        trial, evald = root / "trials" / variant, root / "eval" / variant
        train_trial(variant=get_variant(variant), data=data, output_dir=trial,
                    params=resolve_params("smoke", SKILL_FIT), profile="smoke",
                    tracking=False, stdout=io.StringIO())
        assert main(["evaluate", "--model", str(trial), "--data", str(data), "--variant",
                     variant, "--out", str(evald), *SKILL_EVAL]) == 0
        out[variant] = json.loads((evald / "metrics.json").read_text())
    return out


def _rmse(doc: dict[str, Any]) -> pd.DataFrame:
    """RMSE by target (variable, level, lead) and model, targets the model scored."""
    rows = pd.DataFrame([r for r in doc["rows"] if r["metric"] == "rmse"])
    rows["level"] = rows["level"].fillna(-1)
    table = rows.pivot_table(index=["variable", "level", "lead_hours"], columns="model",
                             values="value")
    return table.dropna(subset=["model"])


def _f1(doc: dict[str, Any], quantity: str) -> float:
    (e,) = [e for e in doc["events"] if e["model"] == "model" and e["quantity"] == quantity]
    hits, misses, false_alarms = e["hits"], e["misses"], e["false_alarms"]
    assert hits + misses > 0, f"no {quantity} event in the truth: the event table is empty"
    return float(2 * hits / (2 * hits + misses + false_alarms))


def floor_failures(variant: str, doc: dict[str, Any]) -> list[str]:
    """What in ``doc`` (a metrics.json) falls short of ``FLOORS[variant]``; empty when none."""
    floor = FLOORS[variant]
    table = _rmse(doc)
    won_c = float((table["model"] < table["climatology"]).mean())
    won_p = float((table["model"] < table["persistence"]).mean())
    leads = sorted(set(table.index.get_level_values("lead_hours")))
    ratio = {v: float(table.loc[(v, -1, leads[0]), "model"]
                      / table.loc[(v, -1, leads[0]), "persistence"]) for v in floor.headline}
    f1 = {e["quantity"]: _f1(doc, e["quantity"]) for e in doc["events"]
          if e["model"] == "model" and e["quantity"] != "tp_24h"}
    print(f"{variant}: won {won_c:.2f} vs climatology, {won_p:.2f} vs persistence; first lead "
          f"/ persistence {ratio}; F1 {f1}")
    failures = []
    if won_c < floor.vs_climatology:
        failures.append(f"won {won_c:.2f} vs climatology < {floor.vs_climatology}")
    if won_p < floor.vs_persistence:
        failures.append(f"won {won_p:.2f} vs persistence < {floor.vs_persistence}")
    failures += [f"{v}: first lead {ratio[v]:.2f}x persistence > {most}"
                 for v, most in floor.headline.items() if ratio[v] > most]
    # Every event the variant is scored on happens, so its F1 is defined.
    wanted = {"ws10"} | ({"pm2p5"} if variant == "air-pollution" else set()) | (
        {"swh"} if variant == "ocean-waves" else set())
    failures += [f"no {q} event scored" for q in sorted(wanted - set(f1))]
    if not f1 or max(f1.values()) <= floor.best_f1:
        failures.append(f"best event F1 {max(f1.values(), default=0):.2f} <= {floor.best_f1}")
    return failures


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_skill_floors(variant: str, skill_evals: dict[str, dict[str, Any]]) -> None:
    assert floor_failures(variant, skill_evals[variant]) == []


def _copy_of(doc: dict[str, Any], baseline: str) -> dict[str, Any]:
    """``doc`` as a model that copies ``baseline`` would have scored: its rows and events."""
    rows = [r for r in doc["rows"] if r["model"] != "model"]
    rows += [{**r, "model": "model"} for r in doc["rows"] if r["model"] == baseline]
    events = [e for e in doc["events"] if e["model"] != "model"]
    events += [{**e, "model": "model"} for e in doc["events"] if e["model"] == baseline]
    return {**doc, "rows": rows, "events": events}


@pytest.mark.parametrize("baseline", ["persistence", "climatology"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_model_that_copies_a_baseline_fails_the_floors(
    variant: str, baseline: str, skill_evals: dict[str, dict[str, Any]]
) -> None:
    """The negative control: floors that a copy of persistence (or of climatology) passes
    would pass a model that learnt nothing."""
    assert floor_failures(variant, _copy_of(skill_evals[variant], baseline))


def test_air_pollution_first_lead_error_is_not_an_outlier(
    skill_evals: dict[str, dict[str, Any]]
) -> None:
    """Negative values left unclamped made the 12 h pm2p5 error 80x the 24 h one."""
    table = _rmse(skill_evals["air-pollution"])
    for v in ("pm1", "pm2p5", "pm10", "tcno2"):
        first, second = (float(table.loc[(v, -1, lead), "model"]) for lead in (12.0, 24.0))
        assert first < 2 * second, (v, first, second)


# -- defects that once sank a variant's skill, one test each -----------------------------------


def _real_batch(variant: str):  # type: ignore[no-untyped-def]
    """A one-sample batch of the first two synthetic times of ``variant`` (real magnitudes)."""
    import torch
    from aurora import Batch, Metadata

    from aurora_mlops.data import synthesize

    spec = VARIANTS[variant]
    ds = synthesize(variant, times=2, seed=1)

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(ds[name].values.astype("float32"))

    return Batch(
        surf_vars={v: t(v)[None] for v in spec.surf_vars},
        static_vars={v: t("z_static" if v == "z" else v) for v in spec.static_vars},
        atmos_vars={v: t(v)[None] for v in spec.atmos_vars},
        metadata=Metadata(
            lat=torch.from_numpy(ds["lat"].values.astype("float32")),
            lon=torch.from_numpy(ds["lon"].values.astype("float32")),
            time=(ds["time"].values[-1].astype("datetime64[s]").item(),),
            atmos_levels=tuple(int(x) for x in ds["level"].values),
        ),
    )


def test_air_pollution_first_lead_is_clamped_like_the_others() -> None:
    """Cause of the 12 h error 5-50x the 24 h one: Aurora clamps the positive species from the
    second roll-out step on only (``clamp_at_first_step=False``), so an untrained model's
    negative first-step concentrations were scored as they were. The smoke model clamps them
    at every step."""
    import torch

    from aurora_mlops.variants import build_model

    spec = VARIANTS["air-pollution"]
    batch = _real_batch("air-pollution")
    positive = [v for v in spec.surf_vars if v not in ("2t", "10u", "10v", "msl")]
    torch.manual_seed(0)
    fixed = build_model("air-pollution").eval()
    torch.manual_seed(0)
    unclamped = build_model("air-pollution", {"clamp_at_first_step": False}).eval()
    with torch.no_grad():
        ok, bad = fixed(batch), unclamped(batch)
    assert all(float(ok.surf_vars[v].min()) >= 0 for v in positive)
    assert all(float(ok.atmos_vars[v].min()) >= 0 for v in ("co", "no", "no2", "go3", "so2"))
    assert any(float(bad.surf_vars[v].min()) < 0 for v in positive)  # what the fix removes


def test_air_pollution_surface_species_are_normalised_to_their_own_size() -> None:
    """Cause of pm2p5 48x worse than persistence: Aurora's CAMS scales (pm2p5 2.3e-6 kg m-3)
    are ~300x the fields' spread, so a from-scratch model's output noise swamped the signal.
    The smoke model's ``surf_stats`` bring every surface species to order one."""
    from aurora.normalisation import scales

    from aurora_mlops.data import synthesize

    spec = VARIANTS["air-pollution"]
    stats = spec.config("smoke")["surf_stats"]
    ds = synthesize("air-pollution", seed=1)
    for v in ("pm1", "pm2p5", "pm10", "tcco", "tc_no", "tcno2", "tcso2"):
        x = ds[v].values.astype("float64")
        typical = float(abs(x).mean())
        assert 0.1 < typical / stats[v][1] < 10, (v, typical, stats[v])
        assert typical / scales[v] < 0.2, (v, "Aurora's own scale was not the problem?")


def test_high_res_smoke_model_sees_as_many_tokens_as_medium_res() -> None:
    """Cause of high-res losing on 79 % of targets: patch 10 on the 40x80 smoke grid left 4x8
    tokens, each decoding 100 points of every variable from 32 channels."""
    tokens = {}
    for name in ("medium-res", "high-res"):
        spec = VARIANTS[name]
        patch = spec.config("smoke").get("patch_size", 4)
        h, w = spec.smoke_grid
        tokens[name] = (h // patch) * (w // patch)
    assert tokens["high-res"] >= tokens["medium-res"] == 128, tokens


def test_ocean_waves_smoke_model_is_wide_enough_for_its_surface_channels() -> None:
    """Cause of ocean waves losing on 63 % of targets: AuroraWave turns its 23 surface variables
    into 47 channels (density, sine and cosine channels), which the 32-wide smoke embedding
    shared with every other variant could not carry (37 % won; 48 wide: 43 %)."""
    from aurora_mlops.variants import build_model

    model = build_model("ocean-waves")
    width = VARIANTS["ocean-waves"].config("smoke")["embed_dim"]
    assert len(model.surf_vars) == 47
    assert width >= len(model.surf_vars), width
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_ocean_waves_model_and_persistence_are_scored_on_the_same_points(
    skill_evals: dict[str, dict[str, Any]]
) -> None:
    """Part of swh 1.8x persistence's RMSE after make run's fit (0.33 vs 0.18 m; 0.31 vs 0.22 m
    once fixed, at the same 300 steps): the synthetic wave fields were 0 over land where
    ERA5's are NaN, so persistence was scored (error 0) on land points the
    model leaves out (AuroraWave blanks them), diluting its RMSE by sqrt(sea fraction). With
    ERA5's convention both skip land; the model alone skips only the few sea points it calls
    calm (the polar ice band, where the truth is 0, and a few points this short fit's density
    channel still gets wrong)."""
    skipped = skill_evals["ocean-waves"]["nan_skipped"]
    pairs = skill_evals["ocean-waves"]["pairs"]["persistence"]
    h, w = VARIANTS["ocean-waves"].smoke_grid
    land = skipped["persistence"]["swh"] / pairs
    assert land > 0.2 * h * w, land  # the land, not scored
    sea = h * w - land
    for v in ("swh", "mwp", "wind"):
        extra = (skipped["model"][v] - skipped["persistence"][v]) / pairs
        assert 0 <= extra < 0.15 * sea, (v, extra, sea)
