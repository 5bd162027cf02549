"""The credentials the sandbox platforms accept: each adapter declares its own (``sandbox_credentials``); this is
the view of all of them the fakes and the connect form's demo hint read. A newcomer connects every platform with
them without a real account; anything else is refused the way the real platform refuses it. None of these is a
real secret.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping


class _SandboxCredentials(Mapping):
    """Platform code -> the credentials its sandbox accepts (read from the registry when asked)."""

    def _all(self) -> dict[str, dict[str, str]]:
        from platforms.adapters.registry import all_adapter_classes

        return {code: adapter.sandbox_values() for code, adapter in all_adapter_classes().items()}

    def __getitem__(self, code: str) -> dict[str, str]:
        from platforms.adapters.registry import get_adapter_class
        from platforms.errors import UnknownPlatform

        try:
            return get_adapter_class(code).sandbox_values()
        except UnknownPlatform:
            raise KeyError(code) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


DEMO_CREDENTIALS: Mapping[str, dict[str, str]] = _SandboxCredentials()

# The access token a fake treats as expired (to show the "wrong token" path in the demo).
EXPIRED_TOKEN = "expired-token"
