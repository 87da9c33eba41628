"""Loading weights into a variant's model: a local checkpoint or the published one.

Re-exported as :func:`aurora_mlops.variants.load_weights`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aurora_mlops.errors import CheckpointError

if TYPE_CHECKING:
    import torch

__all__ = ["CheckpointSource", "load_weights"]


class CheckpointSource(Protocol):
    """What loading needs of a :class:`~aurora_mlops.variants.VariantSpec` (which has it all;
    a protocol keeps this module from importing the registry it serves)."""

    @property
    def name(self) -> str: ...

    @property
    def aurora_class(self) -> str: ...

    @property
    def checkpoint_repo(self) -> str: ...

    @property
    def checkpoint_name(self) -> str: ...


def load_weights(
    model: torch.nn.Module,
    spec: CheckpointSource,
    source: str | Path,
    *,
    strict: bool = True,
) -> None:
    """Load weights into ``model`` from a local file or from the model hub.

    Args:
        model: A model built by :func:`build_model` for ``spec``.
        spec: Its variant.
        source: A local checkpoint path, or ``hub`` / ``hub:<repo>/<name>`` for the published
            weights through ``aurora``'s own ``load_checkpoint`` (needs network access the
            first time). That calls ``huggingface_hub.hf_hub_download``, which caches under
            ``$HF_HOME/hub``: production Katib trials set ``HF_HOME`` on the artifacts volume,
            so a sweep downloads the weights once, not once per trial pod.
        strict: Demand that every parameter is present on both sides.

    Raises:
        CheckpointError: The file is missing or unreadable, or its tensors do not fit the model
            (the message names the first parameter that differs and both shapes).
    """
    source = str(source)
    try:
        if source == "hub" or source.startswith("hub:"):
            repo, name = spec.checkpoint_repo, spec.checkpoint_name
            if source.startswith("hub:"):
                repo, _, name = source[4:].rpartition("/")
            model.load_checkpoint(repo, name, strict=strict)  # type: ignore[operator]
            return
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
        if spec.aurora_class == "AuroraAirPollution":
            # The package's adapter for this class rewrites keys of published checkpoints and
            # needs all 13 levels; our own checkpoints are plain state dicts.
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=strict)
        else:
            model.load_checkpoint_local(str(path), strict=strict)  # type: ignore[operator]
    except CheckpointError:
        raise
    except (
        RuntimeError,
        KeyError,
        AssertionError,
        EOFError,
        OSError,
        ValueError,
        pickle.UnpicklingError,
    ) as e:
        raise CheckpointError(
            f"checkpoint {source} does not fit variant {spec.name}: {_first_line(e)}"
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
