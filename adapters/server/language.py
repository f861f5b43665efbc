"""The language of the texts a handler writes into its output, set per request.

Outputs such as ``stmt_rslt_dscr`` (3201), result-file memos (3202) and the 2601 ``memo``
are read by people at the institution. The application sets this from Accept-Language
(``en`` or ``zh``) before it calls the handler.
"""

from __future__ import annotations

import contextvars

__all__ = ["RESPONSE_LANGUAGE", "english"]

RESPONSE_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("response_language", default="zh")


def english() -> bool:
    """Return True when the current request asked for English."""
    return RESPONSE_LANGUAGE.get() == "en"
