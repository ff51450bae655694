"""qSOFA: the quick Sequential (Sepsis-related) Organ Failure Assessment (Sepsis-3, 2016).

One point for each of: respiratory rate ≥ 22 /min; altered mentation; systolic blood pressure
≤ 100 mmHg. A score of 2 or more is "positive": in adults with suspected infection outside the
ICU it identified those at greater risk of a poor outcome (Seymour et al. 2016; adopted by the
Sepsis-3 consensus, Singer et al. 2016, Box 4). qSOFA is a prompt to think of sepsis, not a
diagnosis of sepsis. Model card: ``docs/models/qsofa.md``.

Altered mentation is read from ``gcs`` (Glasgow Coma Scale total, 3-15: altered when < 15) or
from ``altered_mentation`` (true / false), whichever is given; when both are given, either one
indicating altered mentation scores the point. The criteria are inequalities, not printed bands:
a respiratory rate of 21.5 /min is not ≥ 22 and scores 0; a systolic pressure of 100.5 mmHg is
not ≤ 100 and scores 0.

References
----------
Seymour CW, Liu VX, Iwashyna TJ, et al. Assessment of clinical criteria for sepsis: for the
Third International Consensus Definitions for Sepsis and Septic Shock (Sepsis-3). JAMA
2016;315(8):762-774.
Singer M, Deutschman CS, Seymour CW, et al. The Third International Consensus Definitions for
Sepsis and Septic Shock (Sepsis-3). JAMA 2016;315(8):801-810 (Box 4, qSOFA criteria).
Teasdale G, Jennett B. Assessment of coma and impaired consciousness: a practical scale.
Lancet 1974;2(7872):81-84 (Glasgow Coma Scale; total 3-15).

Examples
--------
>>> from medtwin.risk.qsofa import QSOFA
>>> r = QSOFA.compute_one({"respiratory_rate_per_min": 22, "systolic_bp_mm_hg": 100, "gcs": 15})
>>> r.value, r.band
(2, 'positive')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medtwin.risk.base import (
    Band,
    BandTable,
    BoolArray,
    CodeArray,
    InputData,
    IntArray,
    PointsScore,
    PopulationRule,
    ScoreInput,
    age_input,
    respiratory_rate_input,
    systolic_bp_input,
)

__all__ = ["QSOFA", "QSofa"]

SOURCE = (
    "Seymour CW, Liu VX, Iwashyna TJ, et al. Assessment of clinical criteria for sepsis: for the "
    "Third International Consensus Definitions for Sepsis and Septic Shock (Sepsis-3). JAMA "
    "2016;315(8):762-774. Singer M, Deutschman CS, Seymour CW, et al. The Third International "
    "Consensus Definitions for Sepsis and Septic Shock (Sepsis-3). JAMA 2016;315(8):801-810, "
    "Box 4."
)
_CRITERIA = "Seymour et al. 2016; Singer et al. 2016 (Sepsis-3) Box 4"

RESPIRATION = BandTable("respiratory_rate_per_min", (("<22", 0), ("≥22", 1)), _CRITERIA)
SYSTOLIC_BP = BandTable("systolic_bp_mm_hg", (("≤100", 1), (">100", 0)), _CRITERIA)
GCS = BandTable(
    "gcs", (("3–14", 1), ("15", 0)), _CRITERIA + ": altered mentation as GCS < 15 (any altered)"
)


class QSofa(PointsScore):
    """qSOFA (Seymour et al. 2016; Sepsis-3). ``QSOFA`` is the instance."""

    name = "qsofa"
    title = "quick Sequential Organ Failure Assessment (qSOFA)"
    version = "1.0.0"
    source = SOURCE
    valid_population = (
        "Adults (18 years or over) with suspected infection, outside the intensive care unit "
        "(Seymour et al. 2016: adult encounters with suspected infection; in the ICU its "
        "predictive validity was lower than SOFA's). Rows with age_years < 18 are refused."
    )
    inputs = (
        respiratory_rate_input(),
        ScoreInput(
            "gcs",
            "{score}",
            "number",
            "Glasgow Coma Scale total, 3-15 (Teasdale & Jennett 1974); below 15 is altered "
            "mentation. Give gcs or altered_mentation",
            required=False,
            valid_range=(3.0, 15.0),
            integer=True,
            range_source="Glasgow Coma Scale total: 3 to 15 by construction",
        ),
        ScoreInput(
            "altered_mentation",
            None,
            "bool",
            "Altered mentation (any new change in mental status). Give gcs or altered_mentation",
            required=False,
        ),
        systolic_bp_input(),
        age_input("18 years or over"),
    )
    components: Mapping[str, int] = {
        "respiratory_rate_per_min": 1,
        "altered_mentation": 1,
        "systolic_bp_mm_hg": 1,
    }
    tables: Mapping[str, BandTable] = {t.label: t for t in (RESPIRATION, GCS, SYSTOLIC_BP)}
    population_rules = (
        PopulationRule(
            "age_years",
            lambda age: age < 18.0,
            "age_years={value}: qSOFA was derived and validated in adults aged 18 years or "
            "over (Seymour et al. 2016)",
        ),
    )
    bands = (
        Band("negative", "fewer than 2 criteria met", _CRITERIA),
        Band("positive", "2 or more criteria met", _CRITERIA),
    )

    def missing_inputs(self, data: InputData) -> dict[str, BoolArray]:
        """Required inputs missing; mentation is missing only when both gcs and the flag are."""
        out = super().missing_inputs(data)
        given = (
            data.present["gcs"]
            | data.present["altered_mentation"]
            | data.invalid["gcs"]
            | data.invalid["altered_mentation"]
        )
        out["gcs"] = ~given
        out["altered_mentation"] = ~given
        return out

    def points(self, data: InputData) -> dict[str, CodeArray]:
        """One point per criterion met; -1 where not determined."""
        from_gcs = GCS.points(data.number("gcs"))
        flag = data.number("altered_mentation")
        from_flag = np.where(np.isnan(flag), -1.0, flag).astype(np.int8)
        # either source saying "altered" scores the point; -1 only when neither is given
        mentation = np.maximum(from_gcs, from_flag).astype(np.int8)
        return {
            "respiratory_rate_per_min": RESPIRATION.points(data.number("respiratory_rate_per_min")),
            "altered_mentation": mentation,
            "systolic_bp_mm_hg": SYSTOLIC_BP.points(data.number("systolic_bp_mm_hg")),
        }

    def band_codes(self, value: IntArray, points: Mapping[str, CodeArray]) -> CodeArray:
        """Positive (1) when 2 or more criteria are met."""
        out: CodeArray = (value >= 2).astype(np.int8)
        return out


QSOFA = QSofa()
"""The qSOFA score (registered as ``"qsofa"``)."""
