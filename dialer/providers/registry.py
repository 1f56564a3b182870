"""Trunk kind -> telephony provider instance.

``"simulated"`` -> ``dialer.providers.simulated.SimulatedProvider.for_settings(settings)``
``"sip"``       -> ``dialer.providers.sip.SipProvider()``

Imports are lazy: a missing or broken provider module only fails calls of
that kind. One instance per kind, created on first use and closed by
``close()``. Tests inject providers with ``ProviderRegistry.of({...})``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from dialer.providers.base import TelephonyProvider


class UnknownTrunkKind(LookupError):
    pass


def _simulated_factory(settings: Any) -> TelephonyProvider:
    module = importlib.import_module("dialer.providers.simulated")
    return module.SimulatedProvider.for_settings(settings)


def _sip_factory(settings: Any) -> TelephonyProvider:
    module = importlib.import_module("dialer.providers.sip")
    return module.SipProvider()


DEFAULT_FACTORIES: dict[str, Callable[[Any], TelephonyProvider]] = {
    "simulated": _simulated_factory,
    "sip": _sip_factory,
}


class ProviderRegistry:
    def __init__(
        self,
        settings: Any = None,
        factories: Mapping[str, Callable[[Any], TelephonyProvider]] | None = None,
    ) -> None:
        self._settings = settings
        self._factories = dict(DEFAULT_FACTORIES if factories is None else factories)
        self._instances: dict[str, TelephonyProvider] = {}

    @classmethod
    def of(cls, providers: Mapping[str, TelephonyProvider]) -> "ProviderRegistry":
        """A registry over ready-made provider instances (tests)."""
        reg = cls(None, factories={})
        reg._instances.update(providers)
        return reg

    def get(self, kind: str) -> TelephonyProvider:
        kind = (kind or "").lower()
        provider = self._instances.get(kind)
        if provider is not None:
            return provider
        factory = self._factories.get(kind)
        if factory is None:
            raise UnknownTrunkKind(f"no telephony provider for trunk kind {kind!r}")
        provider = factory(self._settings)
        self._instances[kind] = provider
        return provider

    async def close(self) -> None:
        instances, self._instances = list(self._instances.values()), {}
        for provider in instances:
            try:
                await asyncio.wait_for(provider.close(), timeout=5)
            except Exception:  # pragma: no cover - best effort at shutdown
                pass
