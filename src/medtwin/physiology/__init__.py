"""Models of the body, each implementing :class:`medtwin.model.Model`.

- :mod:`medtwin.physiology.uva_padova`: the UVA/Padova type 1 diabetes simulator
  (``uva_padova_2008``), with its 30 virtual patients.
- :mod:`medtwin.physiology.body_weight`: the Hall et al. 2011 adult body-weight and
  energy-balance model (``hall_2011_body_weight``), in days.
- :mod:`medtwin.physiology.hovorka`: the Hovorka 2004 glucose-insulin model of type 1
  diabetes (``hovorka_2004``), with the same events and observables.
- :mod:`medtwin.physiology.bergman`: the Bergman minimal model extended for type 1 diabetes
  (``bergman_1979``), with the same events and observables.
- :mod:`medtwin.physiology.cardiovascular`: a mean-flow circulation with the carotid
  baroreflex after Ursino 1998 (``cardiovascular_ursino``): blood loss, fluids, drug effects.

Models register by exporting ``MODELS``; look them up with :func:`medtwin.model.get_model`.
"""

from __future__ import annotations

__all__: list[str] = []
