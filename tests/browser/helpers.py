"""Helpers shared by the browser tests."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct-horse-battery"  # the `user` fixture's


def shot(page, name, *, readme: bool = True, full_page: bool = True):
    """README screenshots: written to docs/screenshots/ with UPDATE_SCREENSHOTS=1, else to test-artifacts/
    (so a test run leaves the tracked files alone). ``readme=False``: always test-artifacts/ (for a look)."""
    update = readme and os.environ.get("UPDATE_SCREENSHOTS")
    folder = SCREENSHOTS if update else ROOT / "test-artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)  # no button left in its hover colour
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two computed CSS colours ("rgb(r, g, b)" / "rgba(r, g, b, a)")."""

    def luminance(colour: str) -> float:
        r, g, b = (int(float(part)) for part in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3])

        def channel(value: int) -> float:
            value /= 255
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
