"""The one way user data enters the UI's markdown and HTML.

Streamlit renders ``st.markdown``, ``st.caption``, ``st.error`` / ``warning``
/ ``success`` / ``info``, ``st.title`` and ``st.write(str)`` as markdown; with
``unsafe_allow_html=True`` raw HTML in it becomes live elements. Every value
that comes from users or the server (batch, agent, contact and organization
names, CSV headers, status reasons, error messages, key labels, numbers) goes
through :func:`user_text` at the point it is put into such a string, so it is
shown as the characters typed and never as markup:

* HTML: ``& < > " '`` become entities (``html.escape``), so
  ``<img src=x onerror=alert(1)>`` is text, with or without
  ``unsafe_allow_html``;
* markdown: characters that start emphasis, links and images, code, tables,
  strikethrough, headings, LaTeX or Streamlit's ``:color[...]`` directives are
  backslash-escaped, so ``![x](https://evil/pixel)`` is not an image;
* line breaks become spaces (a value cannot start a new block or table row).

Plain-text sinks (``st.text``, ``st.code``, dataframes, widget labels and
options, metric values) need no escaping and must not get it.
"""

from __future__ import annotations

import html
import re

__all__ = ["user_text"]

# Backslash first so the escapes added below are not doubled.
# (``!``, ``(`` and ``:`` need no escape: images, links and ``:red[...]``
# cannot form without an unescaped ``[``.)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~$])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def user_text(value: object) -> str:
    """``value`` as inert text for markdown, HTML-enabled or not."""
    text = "" if value is None else str(value)
    text = _LINE_BREAKS.sub(" ", text)
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return html.escape(text, quote=True)
