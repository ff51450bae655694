"""Models of the body, each implementing :class:`medtwin.model.Model`.

- :mod:`medtwin.physiology.uva_padova`: the UVA/Padova type 1 diabetes simulator
  (``uva_padova_2008``), with its 30 virtual patients.
- :mod:`medtwin.physiology.cardiovascular`: a mean-flow circulation with the carotid
  baroreflex after Ursino 1998 (``cardiovascular_ursino``): blood loss, fluids, drug effects.

Models register by exporting ``MODELS``; look them up with :func:`medtwin.model.get_model`.
"""

from __future__ import annotations

__all__: list[str] = []
