"""MEWS: the Modified Early Warning Score of Subbe et al. (QJM 2001), Table 1.

Five parameters, summed to 0-14. medtwin implements Table 1 of Subbe et al. (2001) as printed
(points in brackets)::

    systolic BP (mmHg)        <70 [3]   71–80 [2]   81–100 [1]   101–199 [0]   ≥200 [2]
    heart rate (/min)         <40 [2]   41–50 [1]   51–100 [0]   101–110 [1]   111–129 [2]   ≥130 [3]
    respiratory rate (/min)   <9 [2]    9–14 [0]    15–20 [1]    21–29 [2]     ≥30 [3]
    temperature (°C)          <35 [2]   35–38.4 [0] ≥38.5 [2]
    AVPU                      alert [0]  reacting to voice [1]  reacting to pain [2]  unresponsive [3]

The printed table leaves two whole values in no band: systolic 70 mmHg (between ``<70`` and
``71–80``) and heart rate 40 /min (between ``<40`` and ``41–50``). By medtwin's rule for values
between printed bands (:class:`~medtwin.risk.base.BandTable`: the band with the higher points)
they score 3 and 2, the readings ``≤70`` and ``≤40`` that later reproductions of the table print.
So do 80.5 mmHg (2), 14.5 /min (1) and 38.45 °C (2).

Subbe et al. report that a score of 5 or more was associated with increased risk of death
(OR 5.4, 95 % CI 2.8-10.7), ICU admission (OR 10.9, 2.2-55.6) and HDU admission (OR 3.3,
1.2-9.2): band "high" (5 or more); "low" means only "below that threshold". MEWS has no SpO2 and
no oxygen; urine output, listed in some later versions, is not part of this table. Model card:
``docs/models/mews.md``.

References
----------
Subbe CP, Kruger M, Rutherford P, Gemmel L. Validation of a modified Early Warning Score in
medical admissions. QJM 2001;94(10):521-526. Table 1 (the score); Results (score ≥ 5).

Examples
--------
>>> from medtwin.risk.mews import MEWS
>>> r = MEWS.compute_one({"systolic_bp_mm_hg": 95, "pulse_per_min": 115,
...     "respiratory_rate_per_min": 22, "temperature_c": 38.6, "consciousness": "V"})
>>> r.value, r.band
(8, 'high')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medtwin.risk.base import (
    Band,
    BandTable,
    CodeArray,
    InputData,
    IntArray,
    PointsScore,
    PopulationRule,
    ScoreInput,
    age_input,
    category_points,
    pulse_input,
    respiratory_rate_input,
    systolic_bp_input,
    temperature_input,
)

__all__ = ["MEWS", "Mews"]

SOURCE = (
    "Subbe CP, Kruger M, Rutherford P, Gemmel L. Validation of a modified Early Warning Score "
    "in medical admissions. QJM 2001;94(10):521-526. Table 1."
)
_TABLE1 = "Subbe et al. 2001, Table 1"

SYSTOLIC_BP = BandTable(
    "systolic_bp_mm_hg",
    (("<70", 3), ("71–80", 2), ("81–100", 1), ("101–199", 0), ("≥200", 2)),
    _TABLE1 + "; 70 mmHg (printed in no band) scores 3 by the between-bands rule",
)
HEART_RATE = BandTable(
    "pulse_per_min",
    (("<40", 2), ("41–50", 1), ("51–100", 0), ("101–110", 1), ("111–129", 2), ("≥130", 3)),
    _TABLE1 + "; 40 /min (printed in no band) scores 2 by the between-bands rule",
)
RESPIRATION = BandTable(
    "respiratory_rate_per_min",
    (("<9", 2), ("9–14", 0), ("15–20", 1), ("21–29", 2), ("≥30", 3)),
    _TABLE1,
)
TEMPERATURE = BandTable(
    "temperature_c",
    (("<35", 2), ("35–38.4", 0), ("≥38.5", 2)),
    _TABLE1,
)
AVPU_POINTS = (0, 1, 2, 3)
"""A, V, P, U (Subbe et al. 2001, Table 1: alert 0, voice 1, pain 2, unresponsive 3)."""


class Mews(PointsScore):
    """MEWS (Subbe et al. 2001, Table 1). ``MEWS`` is the instance."""

    name = "mews"
    title = "Modified Early Warning Score (MEWS)"
    version = "1.0.0"
    source = SOURCE
    valid_population = (
        "Adult emergency medical admissions (Subbe et al. 2001: 709 emergency medical admissions to "
        "the Medical Admissions Unit of a district general hospital). Rows with age_years < 16 "
        "are refused (the age from which UK adult medical services admit)."
    )
    inputs = (
        systolic_bp_input(),
        pulse_input("Heart rate (pulse), beats per minute"),
        respiratory_rate_input(),
        temperature_input(),
        ScoreInput(
            "consciousness",
            None,
            "category",
            "AVPU: A alert, V reacting to voice, P reacting to pain, U unresponsive (MEWS has no "
            "'C' for new confusion: that is NEWS2's ACVPU)",
            categories=("A", "V", "P", "U"),
            aliases={"alert": "A", "voice": "V", "pain": "P", "unresponsive": "U"},
        ),
        age_input("16 years or over"),
    )
    components: Mapping[str, int] = {
        "systolic_bp_mm_hg": SYSTOLIC_BP.max_points,
        "pulse_per_min": HEART_RATE.max_points,
        "respiratory_rate_per_min": RESPIRATION.max_points,
        "temperature_c": TEMPERATURE.max_points,
        "consciousness": max(AVPU_POINTS),
    }
    tables: Mapping[str, BandTable] = {
        t.label: t for t in (SYSTOLIC_BP, HEART_RATE, RESPIRATION, TEMPERATURE)
    }
    population_rules = (
        PopulationRule(
            "age_years",
            lambda age: age < 16.0,
            "age_years={value}: MEWS was validated in adult medical admissions (Subbe et al. 2001)",
        ),
    )
    bands = (
        Band("low", "score 0-4 (below the paper's threshold; not shown to be safe)", _TABLE1),
        Band(
            "high",
            "score 5 or more: increased risk of death (OR 5.4), ICU (OR 10.9) and HDU (OR 3.3) "
            "admission",
            "Subbe et al. 2001, Results",
        ),
    )

    def points(self, data: InputData) -> dict[str, CodeArray]:
        """Points per parameter (Subbe et al. 2001, Table 1); -1 where missing."""
        return {
            "systolic_bp_mm_hg": SYSTOLIC_BP.points(data.number("systolic_bp_mm_hg")),
            "pulse_per_min": HEART_RATE.points(data.number("pulse_per_min")),
            "respiratory_rate_per_min": RESPIRATION.points(data.number("respiratory_rate_per_min")),
            "temperature_c": TEMPERATURE.points(data.number("temperature_c")),
            "consciousness": category_points(data.code("consciousness"), AVPU_POINTS),
        }

    def band_codes(self, value: IntArray, points: Mapping[str, CodeArray]) -> CodeArray:
        """High (1) at 5 or more."""
        out: CodeArray = (value >= 5).astype(np.int8)
        return out


MEWS = Mews()
"""The MEWS score (registered as ``"mews"``)."""
