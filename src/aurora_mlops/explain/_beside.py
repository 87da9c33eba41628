"""An explanation kept beside an evaluation: ``explain --out EVAL_DIR/explanation``.

``evaluate`` links the page from its report when the folder is there as it writes the report,
and ``package --eval EVAL_DIR`` ships the folder with the model and summarises it on the card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["EXPLANATION_DIR", "explanation_beside"]

#: The folder of an evaluation (or a package) that holds its explanation.
EXPLANATION_DIR = "explanation"
#: Inputs a summary names.
TOP_INPUTS = 3


def explanation_beside(folder: str | Path | None) -> dict[str, Any] | None:
    """The explanation in ``folder/explanation`` as the model card shows it, or ``None``.

    Returns:
        ``dir`` (the folder), ``page`` (the HTML page, relative to ``folder``), ``target``,
        ``lead_hours``, ``ranked_by`` and ``top``: the leading inputs as ``(name, share)``.
        A folder without a readable ``explanation.json`` counts as no explanation.
    """
    if folder is None:
        return None
    where = Path(folder) / EXPLANATION_DIR
    try:
        report = json.loads((where / "explanation.json").read_text(encoding="utf-8"))
        ranked_by = str(report["ranked_by"])
        top = [(str(r["input"]), float(r[f"{ranked_by}_share"]))
               for r in report["inputs"][:TOP_INPUTS]]
        target = report["target"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"dir": where, "page": f"{EXPLANATION_DIR}/explanation.html",
            "target": str(target["label"]), "lead_hours": target["lead_hours"],
            "ranked_by": ranked_by, "top": top}
