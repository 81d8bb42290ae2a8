"""Keep LumiBot's "show" options from opening a browser, without switching off what they write.

LumiBot's defaults (``show_plot``, ``show_indicators``, ``show_tearsheet``) write the HTML files
and then open them. The files are part of the run the user waits for; the browser is not, and a
headless worker must not start one. Two layers, both recorded in the result:

1. ``LUMIBOT_DISABLE_UI=1``: LumiBot's own switch; it skips ``webbrowser.open`` and plotly's
   ``auto_open`` and nothing else (the files are still written).
2. A no-op browser registered first with :mod:`webbrowser`, for any other caller; it counts the
   pages it was asked to open instead of opening them.
"""

from __future__ import annotations

import os
import webbrowser
from typing import Any

HOW = (
    "LUMIBOT_DISABLE_UI=1 (LumiBot skips webbrowser.open and plotly auto_open; files are still written) "
    "and a no-op browser registered first with webbrowser"
)


class _NoBrowser(webbrowser.BaseBrowser):
    def __init__(self) -> None:
        super().__init__("lumiprof-no-browser")
        self.refused: list[str] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.refused.append(url)
        return True


class BrowserSuppressor:
    """Installed once per worker, before LumiBot is imported."""

    def __init__(self) -> None:
        self._browser = _NoBrowser()

    def install(self) -> None:
        os.environ.pop("BROWSER", None)
        os.environ["LUMIBOT_DISABLE_UI"] = "1"
        webbrowser.register(self._browser.name, None, self._browser, preferred=True)

    def record(self) -> dict[str, Any]:
        return {"how": HOW, "pages_not_opened": list(self._browser.refused)}
