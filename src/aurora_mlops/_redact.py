"""Hide the credentials of URIs before they reach a log, a message or a file.

A tracking URI may carry ``user:password@`` (``https://alice:s3cret@mlflow.example.org``); any
text that could contain one is passed through :func:`redact_uri` before it is printed or logged.
"""

from __future__ import annotations

import re

__all__ = ["redact_uri"]

# scheme://userinfo@ ; userinfo stops at the first '/', '@' or whitespace after the scheme.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact_uri(text: str) -> str:
    """``text`` with the user-info part of every URI in it replaced by ``***``.

    >>> redact_uri("server http://alice:s3cret@host:5000/api did not answer")
    'server http://***@host:5000/api did not answer'
    """
    return _USERINFO.sub(r"\g<scheme>***@", text)
