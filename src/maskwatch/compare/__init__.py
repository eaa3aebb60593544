"""``maskwatch compare``: train several registered models under the same conditions and compare them.

Light at import time; the names below load lazily (they import PyTorch).
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "CompareRequest", "Overrides", "plan_comparison", "run_comparison"]


def __getattr__(name: str) -> Any:
    if name in ("PRESETS", "Overrides"):
        from maskwatch.compare import presets

        return getattr(presets, name)
    if name in ("CompareRequest", "plan_comparison", "run_comparison"):
        from maskwatch.compare import runner

        return getattr(runner, name)
    raise AttributeError(name)
