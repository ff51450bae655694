"""medtwin: open-source patient digital twins.

Importing medtwin has no side effects and loads no heavy library; each room
(``record``, ``ingest``, ``store`` ...) is a sub-package with its own public API.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0.dev0"
