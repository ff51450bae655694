"""The patient's twin: a model whose parameters are fitted to this patient's own data.

- :mod:`medtwin.twin.data`: :class:`PatientData`, the observations and known events a twin
  is fitted to.
- :mod:`medtwin.twin.calibrate`: MAP estimation with population priors, multi-start, and
  uncertainty (Laplace approximation / posterior samples).
- :mod:`medtwin.twin.assimilate`: sequential update as new data arrive (particle filter),
  forecasts with bands.
- :mod:`medtwin.twin.scenario`: what-if interventions over the posterior ensemble, outcomes as
  distributions and clinical metrics.

See ``docs/twin.md``.
"""

from __future__ import annotations

from medtwin.twin.assimilate import Forecast, ParticleFilter
from medtwin.twin.data import DataError, PatientData

__all__ = ["DataError", "Forecast", "ParticleFilter", "PatientData"]
