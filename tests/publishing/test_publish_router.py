"""The A/B router pyfunc on a real ``mlflow server``: registered, loaded, sticky, self-reporting."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pytest

from aurora_mlops.cli import main
from aurora_mlops.publishing import publish_package, publish_router, route
from aurora_mlops.publishing._http import use_registry

GATE = "val_score<=champion"


def _contract_side(request_id: str, p: float) -> str:
    """The routing contract of ``publishing/_router.py``'s docstring, written out again."""
    u = int(hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:16], 16) / 2**64
    return "B" if u < p else "A"


def _same_forecast(a: dict, b: dict) -> bool:
    """Whether two answers hold the same forecast fields (every array-valued entry)."""
    keys = {k for k, v in a.items() if isinstance(v, np.ndarray)}
    assert keys, f"no forecast arrays in the answer: {sorted(a)}"
    return all(k in b and np.allclose(np.asarray(a[k], dtype=float),
                                      np.asarray(b[k], dtype=float)) for k in keys)


def test_router_is_registered_loads_both_models_and_routes_sticky(
    mlflow_server: str, ranked_medium_res: list[Path], capsys: pytest.CaptureFixture
) -> None:
    _, mid, worst = ranked_medium_res
    publish_package(mid, registry_uri=mlflow_server, name="ab-base", gate=GATE)
    assert publish_package(worst, registry_uri=mlflow_server, name="ab-base",
                           gate=GATE).outcome == "refused"  # champion v1, challenger v2
    spec = "ab-base@champion|ab-base@challenger@0.3"
    assert main(["publish", "--ab", spec, "--registry-uri", mlflow_server]) == 0
    assert "aurora-medium-res-ab v1 registered" in capsys.readouterr().out
    again = publish_router(spec, registry_uri=mlflow_server)
    assert (again.name, again.version, again.created) == ("aurora-medium-res-ab", "1", False)
    assert (again.a_version, again.b_version) == ("1", "2")

    with use_registry(mlflow_server):
        router = mlflow.pyfunc.load_model("models:/aurora-medium-res-ab@champion")
    impl = router.unwrap_python_model()
    assert impl.p == pytest.approx(0.3) and set(impl.models) == {"A", "B"}

    # 1,000 request ids: the router's split equals the documented contract (B when the first
    # 8 bytes of sha256(id), big-endian, over 2**64 are below p), computed here independently
    ids = [f"req-{i:04d}" for i in range(1000)]
    sides = [_contract_side(i, 0.3) for i in ids]
    assert [route(i, impl.p) for i in ids] == sides
    assert abs(sides.count("B") - 300) <= 3 * math.sqrt(1000 * 0.3 * 0.7)

    # end to end: real forecasts; each answer says who served it, the same id sticks, and the
    # forecast is the one that arm's own registered model makes (A and B differ)
    example = json.loads((mid / "serving_input_example.json").read_text())["inputs"]
    with use_registry(mlflow_server):
        own = {side: mlflow.pyfunc.load_model(f"models:/ab-base@{alias}").predict(
                   example, params={"steps": 1})
               for side, alias in (("A", "champion"), ("B", "challenger"))}
    assert not _same_forecast(own["A"], own["B"]), "A and B must be different models"
    picks = [ids[sides.index("A")], ids[sides.index("B")]]
    for rid, expected in zip(picks, "AB", strict=True):
        first = router.predict(example, params={"request_id": rid, "steps": 1})
        second = router.predict(example, params={"request_id": rid, "steps": 1})
        assert first["served_by"] == second["served_by"] == expected
        assert first["served_version"] == ("1" if expected == "A" else "2")
        assert first["served_model"] == ("ab-base@champion" if expected == "A"
                                         else "ab-base@challenger")
        assert first["lead_hours"] == [6]
        assert _same_forecast(first, own[expected])
    with pytest.raises(mlflow.exceptions.MlflowException, match="request_id is missing"):
        router.predict(example, params={"steps": 1})


def test_router_spec_errors_exit_1(mlflow_server: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["publish", "--ab", "a@x|b@y", "--registry-uri", mlflow_server]) == 1
    assert "must end with @P" in capsys.readouterr().err
    assert main(["publish", "--ab", "nope@champion|nope@challenger@0.1",
                 "--registry-uri", mlflow_server]) == 1
    assert "does not exist" in capsys.readouterr().err
