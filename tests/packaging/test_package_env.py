"""The packaged ``requirements.txt`` is what inference needs: a model loads and answers both
request forms in a process where only those distributions (and what they require) can be
imported, and the list leaves out what inference never imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Run in a child interpreter without the project's site-packages: it sees the standard
#: library and one folder holding links to the allowed distributions only, as an environment
#: built from requirements.txt alone would.
CHILD = r'''
import json, site, sys
site_dir, package, data, out = json.loads(sys.argv[1])
sys.path[:] = [p for p in sys.path if "site-packages" not in p]
site.addsitedir(site_dir)
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(package)
example = json.load(open(f"{package}/serving_input_example.json"))
arrays = model.predict(example["inputs"], params=example["params"])
refs = model.predict({"input_uri": data, "output_uri": out}, params={"steps": 1})
print(json.dumps({"arrays": sorted(arrays), "refs": refs["output_uri"]}))
'''


def _site(root: Path, dists: list[str]) -> Path:
    """A site folder with links to the top-level files and folders of ``dists``."""
    from importlib.metadata import distribution

    site = root / "site-packages"
    site.mkdir(parents=True)
    for name in dists:
        dist = distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if not f.parts[0].startswith("..")}:
            src = Path(str(dist.locate_file(top)))
            if src.exists() and not (site / top).exists():
                (site / top).symlink_to(src)
    return site


def _allowed(package: Path, leave_out: str = "") -> list[str]:
    from aurora_mlops.packaging._requirements import closure

    lines = (package / "requirements.txt").read_text().splitlines()
    names = [ln.split("==")[0] for ln in lines if "==" in ln]
    return sorted(closure(names) - {leave_out})


def _run(package: Path, data: Path, out: Path,
         allowed: list[str]) -> subprocess.CompletedProcess[str]:
    site = _site(out.parent / f"env-{out.stem}", allowed)
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD,
         json.dumps([str(site), str(package), str(data), str(out)])],
        capture_output=True, text=True, timeout=600, cwd=out.parent,
    )


def test_the_requirements_alone_load_and_run_the_model(
    packaged_models: dict[str, dict[str, Path]], tmp_path: Path,
) -> None:
    paths = packaged_models["medium-res"]
    done = _run(paths["package"], paths["data"], tmp_path / "fc.nc", _allowed(paths["package"]))
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"2t", "init_time", "lead_hours"} <= set(answer["arrays"])
    assert Path(answer["refs"]).exists()
    # The negative control: the same run without torch fails, so the pruned site is all the
    # child sees.
    done = _run(paths["package"], paths["data"], tmp_path / "fc2.nc",
                _allowed(paths["package"], leave_out="torch"))
    assert done.returncode != 0 and "No module named 'torch'" in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("name", ["kfp", "kubernetes", "optuna", "psycopg2-binary", "mlserver",
                                  "s3fs", "rich"])
def test_the_requirements_leave_out_what_inference_never_imports(
    packaged_models: dict[str, dict[str, Path]], name: str,
) -> None:
    package = packaged_models["medium-res"]["package"]
    listed = (package / "requirements.txt").read_text() + (package / "constraints.txt").read_text()
    assert f"\n{name}==" not in "\n" + listed.lower()
