"""The one YAML loader for Katib specs: scalars typed the way ``kubectl apply`` types them."""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_spec"]


class _KubeLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a number, as Kubernetes' YAML reader does."""


_KubeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def load_spec(text: str) -> Any:
    """Parse one YAML document the way ``kubectl apply`` would type its scalars.

    Every spec the project reads (``katib check``, the local runner, ``tune analyze``, the Katib
    client) goes through this loader.

    Raises:
        yaml.YAMLError: Not YAML, or more than one document.
    """
    docs = list(yaml.load_all(text, Loader=_KubeLoader))
    docs = [d for d in docs if d is not None] or [None]
    if len(docs) > 1:
        raise yaml.YAMLError(f"expected one YAML document, found {len(docs)}")
    return docs[0]

