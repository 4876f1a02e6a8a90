"""nurture: email nurturing workflows as code.

The names a program using nurture as a library needs, importable from here::

    import nurture

    project = nurture.load_project("my-campaigns")          # raises DefinitionError
    engine = nurture.build_engine(nurture.get_settings())   # project, database, transport
    engine.advance(engine.claim_due())                       # what a worker does

They are loaded on first use, so importing one small module (`nurture.clock`)
does not load the engine. The architecture, package by package, is in the
README; `nurture.testing` is the test harness (it needs pytest).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nurture.definitions.loader import Project, load_project
    from nurture.engine.factory import build_engine
    from nurture.engine.service import Engine, EngineOptions
    from nurture.errors import (
        ConfigurationError,
        Conflict,
        DatabaseUnavailable,
        DefinitionError,
        NurtureError,
        Problem,
        TemplateError,
    )
    from nurture.events import EventType
    from nurture.lifecycle.service import Lifecycle
    from nurture.settings import Settings, get_settings

#: Public name → the module that defines it.
_EXPORTS: dict[str, str] = {
    "Project": "nurture.definitions.loader",
    "load_project": "nurture.definitions.loader",
    "build_engine": "nurture.engine.factory",
    "Engine": "nurture.engine.service",
    "EngineOptions": "nurture.engine.service",
    "Lifecycle": "nurture.lifecycle.service",
    "EventType": "nurture.events",
    "Settings": "nurture.settings",
    "get_settings": "nurture.settings",
    "NurtureError": "nurture.errors",
    "DefinitionError": "nurture.errors",
    "TemplateError": "nurture.errors",
    "Problem": "nurture.errors",
    "Conflict": "nurture.errors",
    "DatabaseUnavailable": "nurture.errors",
    "ConfigurationError": "nurture.errors",
}

__all__ = [
    "ConfigurationError",
    "Conflict",
    "DatabaseUnavailable",
    "DefinitionError",
    "Engine",
    "EngineOptions",
    "EventType",
    "Lifecycle",
    "NurtureError",
    "Problem",
    "Project",
    "Settings",
    "TemplateError",
    "build_engine",
    "get_settings",
    "load_project",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nurture' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
