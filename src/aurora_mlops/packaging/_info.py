"""What a package says about itself: :class:`PackageInfo`, kept in the ``MLmodel`` metadata.

``publish`` reads it to tag the registered version and to run the promotion gate, without
loading the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from aurora_mlops.errors import AuroraMLOpsError

__all__ = ["METADATA_KEY", "PackageError", "PackageInfo", "read_package"]

#: Key of the package description inside ``MLmodel``'s ``metadata``.
METADATA_KEY = "aurora_mlops"


class PackageError(AuroraMLOpsError, ValueError):
    """A package cannot be built from its inputs, or a folder is not a package."""


class PackageInfo(BaseModel):
    """A packaged model's identity, provenance and headline scores.

    Attributes:
        path: The package directory (set when read; not stored).
        variant: Variant name.
        domain: What the model forecasts (the variant's description).
        resolution_deg: Grid spacing of the variant in degrees.
        timestep_hours: Hours per rollout step.
        horizon_hours: Longest forecast the package serves.
        grid: ``(lat, lon)`` points of the packaged model's grid.
        profile: ``smoke`` or ``production``.
        dataset: The training dataset (path or URI as the trial recorded it).
        event_thresholds: Event thresholds the evaluation and ``val_score`` used.
        checkpoint_sha256: SHA-256 of the packaged checkpoint (the package's identity); for a
            top-k ensemble, the SHA-256 of its members' digests in order.
        git_commit: Commit of the code that built the package.
        image: Reference of the project image of this version.
        trial: The trial's name (its folder name).
        katib_experiment: Katib Experiment the trial ran in, if any.
        katib_trial: Katib trial name, if any.
        sweep: The local sweep folder the best trial came from, if any.
        val_score: The trial's best validation score (lower is better).
        scores: Headline scores from the evaluation (``rmse_wins_vs_<baseline>``,
            ``rmse_targets_vs_<baseline>``, ``rmse_fraction_vs_<baseline>``, same for ``acc``).
        params: The trial's hyperparameters.
        model_card: ``MODEL_CARD.md`` inside the package.
        ensemble: A top-k ensemble's members, best first (``trial``, ``checkpoint_sha256``,
            ``val_score``, ``budget``); empty for one model, whose trial is ``trial``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    path: Path = Path()
    variant: str
    domain: str
    resolution_deg: float
    timestep_hours: int
    horizon_hours: int
    grid: tuple[int, int]
    profile: str
    dataset: str
    event_thresholds: dict[str, float]
    checkpoint_sha256: str
    git_commit: str
    image: str
    trial: str
    katib_experiment: str | None = None
    katib_trial: str | None = None
    sweep: str | None = None
    val_score: float | None = None
    scores: dict[str, float] = {}
    params: dict[str, Any] = {}
    model_card: Path = Path("artifacts/MODEL_CARD.md")
    ensemble: list[dict[str, Any]] = []

    def stored(self) -> dict[str, Any]:
        """The JSON form kept in ``MLmodel`` (paths relative to the package)."""
        return self.model_dump(mode="json", exclude={"path"})

    def tags(self) -> dict[str, str]:
        """Flat ``str -> str`` tags for a registered model version."""
        tags = {
            "variant": self.variant,
            "domain": self.domain,
            "resolution_deg": f"{self.resolution_deg:g}",
            "timestep_hours": str(self.timestep_hours),
            "horizon_hours": str(self.horizon_hours),
            "grid": f"{self.grid[0]}x{self.grid[1]}",
            "profile": self.profile,
            "dataset": self.dataset,
            "checkpoint_sha256": self.checkpoint_sha256,
            "git_commit": self.git_commit,
            "image": self.image,
            "trial": self.trial,
        }
        if self.ensemble:
            tags["ensemble_members"] = ",".join(str(m["trial"]) for m in self.ensemble)
        for key in ("katib_experiment", "katib_trial", "sweep"):
            value = getattr(self, key)
            if value:
                tags[key] = str(value)
        for name, value in self.event_thresholds.items():
            tags[f"event_threshold.{name}"] = f"{value:.6g}"
        if self.val_score is not None:
            tags["val_score"] = f"{self.val_score:.6g}"
        for name, value in self.scores.items():
            tags[f"score.{name}"] = f"{value:.6g}"
        return tags


def read_package(path: str | Path) -> PackageInfo:
    """The :class:`PackageInfo` of a package directory written by ``package``.

    Raises:
        PackageError: The folder has no ``MLmodel`` or its metadata is not a package's.
    """
    import yaml

    root = Path(path)
    mlmodel = root / "MLmodel"
    if not mlmodel.is_file():
        raise PackageError(
            f"{root} has no MLmodel: pass a directory written by `aurora-mlops package`"
        )
    try:
        meta = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("metadata") or {}
        info = PackageInfo.model_validate({**meta[METADATA_KEY], "path": root})
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as e:
        raise PackageError(
            f"{mlmodel} does not describe an aurora-mlops package ({e}): re-run "
            "`aurora-mlops package`"
        ) from e
    return info.model_copy(update={"model_card": root / info.model_card})
