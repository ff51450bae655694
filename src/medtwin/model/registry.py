"""The model registry: one name -> one :class:`~medtwin.model.base.Model` class.

Built-in models live in the model rooms :mod:`medtwin.physiology` and
:mod:`medtwin.pharmacology`: every module there that exports ``MODELS`` (a tuple of Model
subclasses) contributes them, so a new model is one new module. Other packages add models
through the entry-point group ``medtwin.models`` (:data:`ENTRY_POINT_GROUP`)::

    [project.entry-points."medtwin.models"]
    my_model = "my_package.models:MyModel"

A plugin that fails to load is skipped with a warning; it may not replace a built-in.
Nothing is imported until the first look-up.

>>> "uva_padova_2008" in names()
True
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import warnings
from importlib.metadata import entry_points

from medtwin.model.base import Model, UnknownModelError

__all__ = ["ENTRY_POINT_GROUP", "MODEL_PACKAGES", "all_models", "get_model", "names"]

ENTRY_POINT_GROUP = "medtwin.models"
"""Entry-point group through which other packages add models."""

MODEL_PACKAGES = ("medtwin.physiology", "medtwin.pharmacology")
"""Packages searched for modules exporting ``MODELS``."""

_lock = threading.RLock()
_registry: dict[str, type[Model]] | None = None


def _load() -> dict[str, type[Model]]:
    global _registry
    with _lock:
        if _registry is not None:
            return _registry
        found: dict[str, type[Model]] = {}
        for package_name in MODEL_PACKAGES:
            try:
                package = importlib.import_module(package_name)
            except ModuleNotFoundError:
                continue
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                if info.name.startswith("_"):
                    continue
                module = importlib.import_module(f"{package_name}.{info.name}")
                for cls in getattr(module, "MODELS", ()):
                    if cls.name in found:
                        raise RuntimeError(f"two built-in models are called {cls.name!r}")
                    found[cls.name] = cls
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = entry.load()
                if not (isinstance(cls, type) and issubclass(cls, Model)):
                    raise TypeError(f"{entry.value} is not a Model subclass")
                if cls.name in found:
                    raise ValueError(f"a built-in model is already called {cls.name!r}")
            except Exception as exc:  # a broken plugin must not break medtwin
                warnings.warn(
                    f"model plugin {entry.name!r} skipped: {exc}", RuntimeWarning, stacklevel=2
                )
                continue
            found[cls.name] = cls
        _registry = found
        return found


def get_model(name: str) -> type[Model]:
    """The model class called ``name`` (case-insensitive).

    Raises :class:`~medtwin.model.base.UnknownModelError` listing the known names.
    """
    models = _load()
    try:
        return models[name.lower()]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r} (known: {', '.join(sorted(models))})"
        ) from None


def names() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_load())


def all_models() -> list[type[Model]]:
    """Every registered model class, by name."""
    models = _load()
    return [models[name] for name in sorted(models)]
