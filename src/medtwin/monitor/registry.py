"""The monitor registry: one name -> one :class:`~medtwin.monitor.base.Monitor` class.

Built-in monitors are found by looking at the modules of :mod:`medtwin.monitor`: every module
that exports ``MONITORS`` (a tuple of Monitor subclasses) contributes them, so a new monitor is
one new module. Other packages add monitors through the entry-point group
``medtwin.monitors`` (:data:`ENTRY_POINT_GROUP`), naming a Monitor subclass::

    [project.entry-points."medtwin.monitors"]
    shock_index = "my_package.monitors:ShockIndexMonitor"

A plugin that fails to load is skipped with a warning; it may not replace a built-in.

Nothing is imported until the first look-up.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import warnings
from importlib.metadata import entry_points

from medtwin.monitor.base import Monitor

__all__ = ["ENTRY_POINT_GROUP", "UnknownMonitorError", "all_monitors", "get", "names"]

ENTRY_POINT_GROUP = "medtwin.monitors"
"""Entry-point group through which other packages add monitors."""

_NOT_MONITOR_MODULES = frozenset({"base", "registry", "hub"})
_lock = threading.RLock()
_registry: dict[str, type[Monitor]] | None = None


class UnknownMonitorError(LookupError):
    """No monitor of that name; the message lists the known ones."""


def _load() -> dict[str, type[Monitor]]:
    global _registry
    with _lock:
        if _registry is not None:
            return _registry
        import medtwin.monitor as package

        found: dict[str, type[Monitor]] = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name in _NOT_MONITOR_MODULES or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"medtwin.monitor.{info.name}")
            for cls in getattr(module, "MONITORS", ()):
                if cls.name in found:
                    raise RuntimeError(f"two built-in monitors are called {cls.name!r}")
                found[cls.name] = cls
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = entry.load()
                if not (isinstance(cls, type) and issubclass(cls, Monitor)):
                    raise TypeError(f"{entry.value} is not a Monitor subclass")
                if cls.name in found:
                    raise ValueError(f"a built-in monitor is already called {cls.name!r}")
            except Exception as exc:  # a broken plugin must not break medtwin
                warnings.warn(
                    f"monitor plugin {entry.name!r} skipped: {exc}", RuntimeWarning, stacklevel=2
                )
                continue
            found[cls.name] = cls
        _registry = found
        return found


def get(name: str) -> type[Monitor]:
    """The monitor class called ``name`` (case-insensitive).

    >>> from medtwin.monitor import registry
    >>> "news2" in registry.names()
    True
    """
    monitors = _load()
    try:
        return monitors[name.lower()]
    except KeyError:
        raise UnknownMonitorError(
            f"unknown monitor {name!r} (known: {', '.join(sorted(monitors))})"
        ) from None


def names() -> list[str]:
    """Names of every registered monitor, sorted."""
    return sorted(_load())


def all_monitors() -> list[type[Monitor]]:
    """Every registered monitor class, by name."""
    monitors = _load()
    return [monitors[name] for name in sorted(monitors)]
