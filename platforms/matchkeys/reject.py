"""The one exception a normalizer raises: the value is unusable, and why (a reason shown to the marketer)."""

from __future__ import annotations


class _Reject(Exception):
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason
