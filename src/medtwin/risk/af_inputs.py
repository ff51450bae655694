"""The inputs of the atrial fibrillation scores, read from the record: CHA2DS2-VASc and HAS-BLED;
and the coded-condition reader they share with QRISK3 and the primary-prevention population.

:func:`medtwin.risk.inputs.derive_inputs` calls :func:`af_inputs` after the common inputs, so
``medtwin risk`` computes CHA2DS2-VASc (stroke risk, Lip et al. 2010) and HAS-BLED (bleeding
risk, Pisters et al. 2010) for a patient whose record holds atrial fibrillation or flutter, and
says "not applicable" for one whose record does not (``Score.record_population``). The same
pass derives ``clinical_ascvd``, the population input of the first-event equations (PCE,
PREVENT, Framingham: not for a record with clinical ASCVD), and ``severe_hypercholesterolaemia``
(familial hypercholesterolaemia, or an LDL cholesterol of 190 mg/dL or more: not for the
PCE). :func:`condition_input` (a code list of ``risk/data/record_conditions.toml`` as a yes /
"absent" input) is also what :mod:`medtwin.risk.qrisk3_inputs` reads QRISK3's conditions and
:mod:`medtwin.risk.inputs` reads ``diabetes`` with.

What is read, each item with its source (the code lists and their basis are data:
``risk/data/record_conditions.toml``; the lab windows ``risk/data/record_inputs.toml``):

- conditions (and dialysis procedures) by SNOMED CT code or ICD-10 prefix, either ever recorded
  ("history": heart failure, stroke, TIA, thromboembolism, myocardial infarction, peripheral
  artery disease, bleeding) or active at the date ("active": hypertension, anaemia, liver
  disease, alcohol misuse, dialysis or a transplant status); none recorded is "no", shown as
  inferred (status ``absent``), as for diabetes;
- ``hypertension``: a diagnosis, or current antihypertensive treatment (``bp_treated``);
- ``hypertension_uncontrolled``: the latest systolic pressure in its window above 160 mmHg;
- ``abnormal_renal_function``: dialysis or a kidney transplant, or the latest creatinine at or
  above 200 umol/L (converted with creatinine's molar mass, :mod:`medtwin.record.units`); with
  neither recorded and no valid creatinine it is not known;
- ``abnormal_liver_function``: chronic liver disease, or bilirubin above twice and AST, ALT or
  ALP above three times the upper limit of their own reference ranges;
- ``bleeding_history_or_predisposition``: a bleed ever, an anaemia or bleeding disorder active
  at the date, or the latest haemoglobin below the WHO anaemia threshold for the sex;
- ``labile_inr``: on a vitamin K antagonist, the time in the INR target range 2.0-3.0 over the
  last 180 days (Rosendaal's linear interpolation, :func:`time_in_range`) below 60 %; not on
  one, "no" (HAS-BLED's L applies to vitamin K antagonists only); on one with too few INRs, not
  known;
- ``antiplatelet_or_nsaid``: an active antiplatelet or NSAID order (computed with the other
  medication groups in :mod:`medtwin.risk.inputs`).

References
----------
Lip GYH, Nieuwlaat R, Pisters R, Lane DA, Crijns HJGM. Chest 2010;137:263-272 (CHA2DS2-VASc).
Pisters R, Lane DA, Nieuwlaat R, de Vos CB, Crijns HJGM, Lip GYH. Chest 2010;138:1093-1100
(HAS-BLED).
Rosendaal FR, Cannegieter SC, van der Meer FJ, Briet E. A method to determine the optimal
intensity of oral anticoagulant therapy. Thromb Haemost 1993;69:236-239 (time in range).
World Health Organization. Haemoglobin concentrations for the diagnosis of anaemia and
assessment of severity. WHO/NMH/NHD/MNM/11.1, 2011, Table 1.
Hindricks G et al. 2020 ESC Guidelines for atrial fibrillation. Eur Heart J 2021;42:373-498.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from medtwin.record.context import PUERPERIUM_DAYS
from medtwin.record.facts import SNOMED, Coding

if TYPE_CHECKING:
    from medtwin.risk.inputs import DerivedInput, _Reader
    from medtwin.store.base import StoredFact

__all__ = [
    "ANAEMIA_HB_G_DL",
    "ANAEMIA_HB_PREGNANCY_G_DL",
    "ICD10_SYSTEMS",
    "SBP_UNCONTROLLED_MM_HG",
    "SUSPECTED",
    "CodeListError",
    "af_inputs",
    "code_list",
    "code_list_sources",
    "coding_matches",
    "condition_input",
    "condition_sets",
    "found_at",
    "matches",
    "or_suspected",
    "time_in_range",
]

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_SYSTEMS = (
    ICD10,  # and its national forms under the same root: icd-10-cm, ...
    "http://fhir.de/CodeSystem/bfarm/icd-10-gm",  # German modification (BfArM)
    "http://fhir.de/CodeSystem/dimdi/icd-10-gm",  # the same, before BfArM took over from DIMDI
    "urn:oid:2.16.840.1.113883.6.3",  # ICD-10 by its HL7 OID
    "urn:oid:2.16.840.1.113883.6.90",  # ICD-10-CM by its HL7 OID
)
"""Code systems read as ICD-10 (prefix match on the system): WHO and its modifications share
the category codes the code lists name (E11 ...)."""

SBP_UNCONTROLLED_MM_HG = 160.0
"""HAS-BLED H: uncontrolled hypertension, systolic blood pressure > 160 mmHg (Pisters et al.
2010)."""
CREATININE_ABNORMAL_UMOL_L = 200.0
"""HAS-BLED A (renal): serum creatinine >= 200 umol/L (Pisters et al. 2010)."""
ANAEMIA_HB_G_DL = {"male": 13.0, "female": 12.0}
"""WHO anaemia thresholds (WHO 2011, Table 1): haemoglobin below 13.0 g/dL in men aged 15 and
over, below 12.0 g/dL in non-pregnant women aged 15 and over."""
ANAEMIA_HB_PREGNANCY_G_DL = 11.0
"""The WHO anaemia threshold in pregnancy (WHO 2011, Table 1: below 11.0 g/dL in pregnant
women), for a haemoglobin measured while the record shows the patient pregnant: the plasma
volume expands more than the red cell mass, and a haemoglobin of 11.5 g/dL is not anaemia then."""
LDL_SEVERE_MG_DL = 190.0
"""Severe hypercholesterolaemia: LDL cholesterol >= 190 mg/dL (Grundy SM et al. 2018 ACC/AHA
cholesterol guideline, Circulation 2019;139:e1082-e1143, section 4.2), outside the Pooled Cohort
Equations' population (Goff 2014)."""
BILIRUBIN_TIMES_ULN = 2.0
ENZYME_TIMES_ULN = 3.0
"""HAS-BLED A (liver), biochemical: bilirubin > 2 x ULN with AST/ALT/ALP > 3 x ULN (Pisters et
al. 2010)."""
BILIRUBIN_LOINC = "1975-2"
ENZYME_LOINC = {"1742-6": "ALT", "1920-8": "AST", "6768-6": "ALP"}
ALP_LOINC = "6768-6"
"""Alkaline phosphatase: one measured in a pregnancy or the 42 days after it is not read for
HAS-BLED's liver item, since the placenta makes it (serum ALP rises in the third trimester of a
normal pregnancy while bilirubin and the transaminases do not: Bacq Y et al. Hepatology
1996;23:1030-1034, 103 pregnant women and matched controls)."""

_NOT_VERIFIED = frozenset({"refuted", "entered-in-error"})
SUSPECTED = frozenset({"unconfirmed", "provisional", "differential"})
"""Verification statuses of a condition that is suspected, not established (FHIR R4
condition-ver-status: ``unconfirmed`` and its children ``provisional``, a tentative diagnosis,
and ``differential``, one of a set of possibilities; the German Diagnosesicherheit V,
"Verdachtsdiagnose", is read as provisional at import). A condition found only so makes its
input "not known" (with yes / no as the alternatives), neither a yes nor a no."""
_INACTIVE = frozenset({"resolved", "inactive", "remission"})


class CodeListError(ValueError):
    """A code list of ``risk/data/`` is malformed (the message names the file, line and field)."""


_CODELISTS = "data/codelists"


@cache
def code_list_sources() -> Mapping[str, Mapping[str, str]]:
    """What each published code list of ``risk/data/codelists/`` is and where it was copied
    from (``risk/data/codelists/sources.toml``: the list's publisher and name, its use, the copy
    it was taken from).

    >>> code_list_sources()["qof_afib_cod"]["cluster"]
    'AFIB_COD'
    """
    where = f"risk/{_CODELISTS}/sources.toml"
    text = resources.files("medtwin.risk").joinpath(f"{_CODELISTS}/sources.toml").read_text("utf-8")
    table = tomllib.loads(text)
    for name, entry in table.items():
        for field in ("what", "publisher", "source"):
            if not str(entry.get(field, "")).strip():
                raise CodeListError(f"{where}: [{name}] has no {field!r}")
    return MappingProxyType(table)


@cache
def code_list(name: str) -> Mapping[str, str]:
    """A published SNOMED CT code list, as medtwin ships it: concept id -> term.

    The lists are verbatim copies of public code lists (the NHS England primary care domain
    reference sets that the Quality and Outcomes Framework's registers use, ...), one CSV
    ``risk/data/codelists/NAME.csv`` (``code,term``) each, described in ``sources.toml``. So a
    record that codes a specific concept ("Paroxysmal atrial fibrillation with rapid ventricular
    response", "Stage 1 hypertension (NICE 2011)") is read as the register would read it;
    medtwin ships no SNOMED CT hierarchy.

    Parameters
    ----------
    name
        The list's name (``qof_afib_cod`` ...), a key of :func:`code_list_sources`.

    Raises
    ------
    CodeListError
        Unknown list, a row without a numeric code or a term, or a code listed twice (the file
        and line named).

    Examples
    --------
    >>> code_list("qof_afib_cod")["282825002"]
    'Paroxysmal atrial fibrillation'
    """
    if name not in code_list_sources():
        raise CodeListError(
            f"unknown code list {name!r} (known: {', '.join(sorted(code_list_sources()))})"
        )
    where = f"risk/{_CODELISTS}/{name}.csv"
    text = resources.files("medtwin.risk").joinpath(f"{_CODELISTS}/{name}.csv").read_text("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames != ["code", "term"]:
        raise CodeListError(f"{where}: the header must be 'code,term', not {reader.fieldnames}")
    out: dict[str, str] = {}
    for row in reader:
        code, term = (row.get("code") or "").strip(), (row.get("term") or "").strip()
        if not code.isdigit() or not term or code in out:
            raise CodeListError(
                f"{where}, line {reader.line_num}: bad row {row} (a SNOMED CT id not listed "
                "before, and its term)"
            )
        out[code] = term
    return MappingProxyType(out)


def _snomed(name: str, spec: dict[str, Any]) -> frozenset[str]:
    """The SNOMED CT ids of a condition list: its own ``snomed`` ids and those of its published
    ``snomed_lists``, less its ``snomed_exclude`` ids and the ids of its
    ``snomed_exclude_lists`` (each excluded id must be in one of its lists)."""
    own = {str(code) for code in spec.get("snomed", ())}
    listed = {code for list_name in spec.get("snomed_lists", ()) for code in code_list(list_name)}
    exclude = {str(code) for code in spec.get("snomed_exclude", ())}
    exclude |= {
        c for list_name in spec.get("snomed_exclude_lists", ()) for c in code_list(list_name)
    }
    stray = exclude - listed - own
    if stray:
        raise CodeListError(
            f"risk/data/record_conditions.toml: [{name}] excludes codes that none of its lists "
            f"holds: {sorted(stray)}"
        )
    return frozenset(own | listed) - exclude


@cache
def condition_sets() -> Mapping[str, Mapping[str, Any]]:
    """The code lists ``risk/data/record_conditions.toml``: SNOMED CT ids, ICD-10 prefixes,
    "history" or "active", and the basis of each.

    A list's ``snomed`` is returned as a frozenset: its own ids with those of the published
    lists it names (``snomed_lists``, :func:`code_list`), less ``snomed_exclude``.

    >>> condition_sets()["atrial_fibrillation"]["icd10"]
    ['I48']
    >>> "1010405004" in condition_sets()["atrial_fibrillation"]["snomed"]  # from AFIB_COD
    True
    """
    text = (
        resources.files("medtwin.risk").joinpath("data/record_conditions.toml").read_text("utf-8")
    )
    sets = tomllib.loads(text)
    for name, spec in sets.items():
        if "when" in spec:  # a condition list (qrisk3_drugs holds drug names)
            spec["snomed"] = _snomed(name, spec)
    return sets


def _icd(code: str) -> str:
    """The code's letters and digits, upper case: dots, and the dagger/asterisk/primary markers
    of ICD-10-GM (``E11.20+``, ``N08.3*``, ``S72.0!``), ignored."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def matches(fact: Any, spec: Mapping[str, Any]) -> bool:
    """Whether ``fact``'s code is one of ``spec``'s SNOMED CT ids or starts with one of its
    ICD-10 prefixes (dots ignored, so ``I48.91`` and ``I4891`` are both I48), or, where its
    source resource codes it several ways (an EHR's ICD-10-CM with SNOMED CT and its own codes;
    a German ICD-10-GM with SNOMED CT), any of its other codings does: the fact keeps one
    coding, SNOMED CT where there is one, which may be a concept the lists do not hold while
    the ICD-10 code is in them.

    >>> from medtwin.record.facts import Coding, Condition
    >>> spec = condition_sets()["atrial_fibrillation"]
    >>> af = Coding("http://hl7.org/fhir/sid/icd-10-cm", "I48.91", "Unspecified AF")
    >>> matches(Condition(source="s", source_id="c", code=af), spec)
    True
    """
    if coding_matches(fact.code, spec):
        return True
    raw = getattr(fact, "raw", None)
    concept = raw.get("code") if isinstance(raw, dict) else None
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if not isinstance(codings, list) or len(codings) < 2:
        return False
    return any(
        coding_matches(Coding(str(c.get("system", "")), str(c["code"]), None), spec)
        for c in codings
        if isinstance(c, dict) and "code" in c
    )


def coding_matches(code: Coding | None, spec: Mapping[str, Any]) -> bool:
    """:func:`matches` for one coding (a family member's condition, which is not a fact)."""
    if code is None:
        return False
    if code.system == SNOMED:
        return code.code in spec.get("snomed", ())
    if code.system.startswith(ICD10_SYSTEMS):
        value = _icd(code.code)
        return any(value.startswith(_icd(p)) for p in spec.get("icd10", ()))
    return False


_NOT_DONE = frozenset({"not-done", "preparation"})
"""Procedure statuses of a procedure that did not take place (FHIR R4 event-status: not done,
or only being prepared): a dialysis or a bypass graft recorded so is not one."""


def _counted(fact: Any, at: dt.datetime, spec: Mapping[str, Any]) -> bool:
    start = fact.effective_start
    if start is None or start > at:
        return False
    if fact.kind == "Procedure" and getattr(fact, "status", None) in _NOT_DONE:
        return False
    if getattr(fact, "verification_status", None) in _NOT_VERIFIED:
        return False
    if spec.get("when", "active") == "history":
        return True
    if fact.kind == "Procedure":
        # a procedure is an event: "active" for ``procedure_days`` after it
        return bool((at - start).days <= int(spec.get("procedure_days", 0)))
    if fact.effective_end is not None:
        return bool(fact.effective_end > at)
    # resolved now without an abatement date: taken as ended (as diabetes is read)
    return bool(getattr(fact, "clinical_status", None) not in _INACTIVE)


def _found(reader: _Reader, name: str) -> list[StoredFact]:
    kinds = tuple(condition_sets()[name].get("kinds", ("Condition",)))
    return found_at(reader.facts_of(kinds), name, reader.at)


def found_at(facts: Iterable[StoredFact], name: str, at: dt.datetime) -> list[StoredFact]:
    """The facts of ``facts`` that the code list ``name`` of ``risk/data/record_conditions.toml``
    counts at ``at``: its codes, begun by then and, for an "active" list, not yet abated; never
    one entered in error or refuted. Suspected ones are included (their verification status
    says so: :data:`SUSPECTED`)."""
    spec = condition_sets()[name]
    return [sf for sf in facts if matches(sf.fact, spec) and _counted(sf.fact, at, spec)]


def _label(sf: StoredFact) -> str:
    code = sf.fact.code
    text = f"{code.code} {code.display or ''}".strip() if code is not None else sf.fact.source_id
    start = sf.fact.effective_start
    return f"{text} ({start.date().isoformat()})" if start is not None else text


def _labels(found: Sequence[StoredFact], *, status: bool = False) -> str:
    def one(sf: StoredFact) -> str:
        verification = getattr(sf.fact, "verification_status", None)
        return f"{_label(sf)}, {verification}" if status and verification else _label(sf)

    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return ", ".join(one(sf) for sf in found[:3]) + more


def condition_input(reader: _Reader, name: str, *, as_name: str | None = None) -> DerivedInput:
    """``True`` with the facts found, or ``False`` ("absent") when the record has none.

    A condition recorded only as suspected (verification status in :data:`SUSPECTED`) is
    neither: the input is "missing" with the alternatives yes and no, and says so, so a score
    that needs it gives its range over both (or cannot be computed), instead of counting a
    diagnosis not yet made or ignoring one being worked up."""
    from medtwin.risk.inputs import YES_NO, DerivedInput, _prov

    spec = condition_sets()[name]
    found = _found(reader, name)
    what = str(spec["what"])
    established = [
        sf for sf in found if getattr(sf.fact, "verification_status", None) not in SUSPECTED
    ]
    if established:
        return DerivedInput(
            as_name or name, True, "ok", f"{what}: {_labels(established)}", None, None,
            tuple(_prov(sf, reader.at) for sf in established),
        )  # fmt: skip
    if found:
        return DerivedInput(
            as_name or name, None, "missing",
            f"{what} only suspected, not confirmed: {_labels(found, status=True)}", None, None,
            tuple(_prov(sf, reader.at) for sf in found), YES_NO,
        )  # fmt: skip
    when = " active at the date" if spec.get("when") == "active" else ""
    return DerivedInput(as_name or name, False, "absent", f"no {what}{when} in the record")


def or_suspected(condition: DerivedInput, other: DerivedInput) -> DerivedInput:
    """An input that is yes when a condition is recorded or ``other`` says yes: ``other`` when
    it decides (yes, or not known), else, where the condition is only suspected, "not known"
    naming both (a no from ``other`` cannot settle it); else ``other``'s no."""
    from medtwin.risk.inputs import YES_NO, DerivedInput

    if other.value is not False or condition.value is not None:
        return other
    return DerivedInput(
        other.name, None, "missing", f"{condition.detail}; {other.detail}", other.valid_days,
        None, condition.provenance + other.provenance, YES_NO,
    )  # fmt: skip


def _hypertension(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import YES_NO, DerivedInput

    diagnosis = condition_input(reader, "hypertension")
    if diagnosis.value:
        return diagnosis
    treated = done["bp_treated"]
    if treated.value is True:
        return DerivedInput(
            "hypertension", True, "ok",
            f"antihypertensive treatment ({treated.detail}); no hypertension diagnosis",
            None, None, treated.provenance,
        )  # fmt: skip
    if diagnosis.value is None:  # only suspected; no treatment, or not known
        return DerivedInput(
            "hypertension", None, "missing", f"{diagnosis.detail}; {treated.detail}", None,
            None, diagnosis.provenance + treated.provenance, YES_NO,
        )  # fmt: skip
    if treated.value is None:
        return DerivedInput(
            "hypertension", None, "missing",
            f"no hypertension diagnosis, and treatment not known: {treated.detail}",
            None, None, treated.provenance, YES_NO,
        )  # fmt: skip
    return DerivedInput(
        "hypertension", False, "absent",
        "no hypertension diagnosis active at the date and no antihypertensive treatment",
    )  # fmt: skip


def _current(reader: _Reader, done: Mapping[str, DerivedInput], name: str) -> DerivedInput:
    """Input ``name`` as it is now: the newest measurement, also one of a pregnancy (which the
    cardiovascular scores leave out as not the usual level), unless the user gave it."""
    derived = done[name]
    if derived.status == "given" or not reader.pregnancies().pregnancies:
        return derived  # no pregnancy: the usual level is the newest reading
    return reader.measured(name, current=True)


def _uncontrolled(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import YES_NO, DerivedInput

    sbp = _current(reader, done, "systolic_bp_mm_hg")
    if not sbp.usable:
        return DerivedInput(
            "hypertension_uncontrolled", None, "missing",
            f"systolic_bp_mm_hg: {sbp.reason()}", sbp.valid_days, None, sbp.provenance, YES_NO,
        )  # fmt: skip
    value = float(sbp.value)  # type: ignore[arg-type]
    above = value > SBP_UNCONTROLLED_MM_HG
    return DerivedInput(
        "hypertension_uncontrolled", above, "computed",
        f"latest systolic {value:.0f} mmHg {'>' if above else '<='} {SBP_UNCONTROLLED_MM_HG:g}",
        sbp.valid_days, None, sbp.provenance,
    )  # fmt: skip


def _renal(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.record.units import convert
    from medtwin.risk.inputs import YES_NO, DerivedInput

    name = "abnormal_renal_function"
    dialysis = condition_input(reader, "dialysis_or_kidney_transplant", as_name=name)
    if dialysis.value:
        return dialysis
    creat = _current(reader, done, "creatinine_mg_dl")
    if not creat.usable:
        return DerivedInput(
            name, None, "missing",
            f"no dialysis or kidney transplant recorded, and creatinine_mg_dl: {creat.reason()}",
            creat.valid_days, None, creat.provenance, YES_NO,
        )  # fmt: skip
    umol = float(convert(float(creat.value), "mg/dL", "umol/L", analyte="2160-0"))  # type: ignore[arg-type]
    high = umol >= CREATININE_ABNORMAL_UMOL_L
    return or_suspected(dialysis, DerivedInput(
        name, high, "computed",
        f"creatinine {umol:.0f} umol/L {'>=' if high else '<'} "
        f"{CREATININE_ABNORMAL_UMOL_L:g}; no dialysis or kidney transplant recorded",
        creat.valid_days, None, creat.provenance,
    ))  # fmt: skip


def _severe_hypercholesterolaemia(reader: _Reader) -> DerivedInput:
    """Familial hypercholesterolaemia recorded, or any LDL cholesterol at or above 190 mg/dL up
    to the date (the guideline's threshold is the untreated level, so an old value counts: the
    highest is shown); neither, "no" (``absent``), also for a record without LDL. An LDL measured
    in a pregnancy or the weeks after it is not read (it rises 30-40 % in pregnancy:
    ``in_pregnancy`` of ``record_inputs.toml``)."""
    from medtwin.risk.inputs import DerivedInput, _convert, _prov, validity

    name = "severe_hypercholesterolaemia"
    fh = condition_input(reader, "familial_hypercholesterolaemia", as_name=name)
    if fh.value:
        return fh
    spec = validity()["ldl_mg_dl"]
    highest: tuple[float, StoredFact] | None = None
    in_pregnancy = 0
    for sf in reader.observations():
        f = sf.fact
        if f.code is None or f.code.code not in spec["codes"]:
            continue
        if getattr(f, "value_num", None) is None or f.effective_start is None:
            continue
        if reader.in_pregnancy(sf) is not None:
            in_pregnancy += 1
            continue
        try:
            mg_dl = _convert(float(f.value_num), f.unit, spec["unit"], f.code.code)  # type: ignore[attr-defined]
        except ValueError:
            continue  # a unit that cannot be LDL in mg/dL: not judged
        if highest is None or mg_dl > highest[0]:
            highest = (mg_dl, sf)
    if highest is not None and highest[0] >= LDL_SEVERE_MG_DL:
        mg_dl, sf = highest
        when = sf.fact.effective_start.date().isoformat()  # type: ignore[union-attr]
        return DerivedInput(
            name, True, "ok",
            f"LDL cholesterol {mg_dl:.0f} mg/dL ({when}) >= {LDL_SEVERE_MG_DL:g} mg/dL",
            None, None, (_prov(sf, reader.at),),
        )  # fmt: skip
    outside = " outside a pregnancy" if in_pregnancy else ""
    ldl = (
        f"highest LDL cholesterol{outside} {highest[0]:.0f} mg/dL"
        if highest is not None
        else f"no LDL cholesterol{outside} in the record"
    )
    if in_pregnancy:
        ldl += f" ({in_pregnancy} in one or the {PUERPERIUM_DAYS} days after it, not read)"
    return or_suspected(
        fh,
        DerivedInput(
            name, False, "absent", f"no familial hypercholesterolaemia in the record; {ldl}"
        ),
    )


def _times_uln(sf: StoredFact) -> float | None:
    f = sf.fact
    high = getattr(f, "reference_high", None)
    value = getattr(f, "original_value", None)
    if value is None:
        value = getattr(f, "value_num", None)
    if high is None or value is None or high <= 0:
        return None
    return float(value) / float(high)


def _liver(reader: _Reader) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput, _prov, validity

    name = "abnormal_liver_function"
    disease = condition_input(reader, "chronic_liver_disease", as_name=name)
    if disease.value:
        return disease
    window = int(validity()["liver_tests"]["valid_days"])
    newest: dict[str, StoredFact] = {}
    placental = 0
    for sf in reader.observations():
        f = sf.fact
        code = f.code.code if f.code is not None else None
        if code not in ENZYME_LOINC and code != BILIRUBIN_LOINC:
            continue
        if f.effective_start is None or (reader.at - f.effective_start).days > window:
            continue
        if code == ALP_LOINC and reader.in_pregnancy(sf) is not None:
            placental += 1  # the placenta makes alkaline phosphatase: not the liver's
            continue
        held = newest[code].fact.effective_start if code in newest else None
        if held is None or f.effective_start >= held:
            newest[code] = sf
    bili = newest.get(BILIRUBIN_LOINC)
    bili_x = _times_uln(bili) if bili is not None else None
    enzymes = {
        ENZYME_LOINC[c]: (sf, _times_uln(sf)) for c, sf in newest.items() if c in ENZYME_LOINC
    }
    high_enzymes = [
        (label, sf, x)
        for label, (sf, x) in enzymes.items()
        if x is not None and x > ENZYME_TIMES_ULN
    ]
    if bili is not None and bili_x is not None and bili_x > BILIRUBIN_TIMES_ULN and high_enzymes:
        said = ", ".join(f"{label} {x:.1f} x ULN" for label, _, x in high_enzymes)
        return DerivedInput(
            name, True, "ok",
            f"bilirubin {bili_x:.1f} x ULN with {said} (no chronic liver disease recorded)",
            window, None, tuple(_prov(sf, reader.at) for sf in (bili, *[h[1] for h in high_enzymes])),
        )  # fmt: skip
    judged = [bili_x] + [x for _, x in enzymes.values()]
    if not newest:
        tests = "no liver tests in the last year"
    elif all(x is None for x in judged):
        tests = "liver tests without a reference range are not judged"
    else:
        tests = "liver tests not above the HAS-BLED limits"
    if placental:
        tests += (
            f" ({placental} alkaline phosphatase of a pregnancy or the {PUERPERIUM_DAYS} days "
            "after it not read: the placenta makes it)"
        )
    return or_suspected(
        disease,
        DerivedInput(
            name, False, "absent",
            f"no chronic liver disease active at the date in the record; {tests}",
        ),
    )  # fmt: skip


def _bleeding(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import DerivedInput

    name = "bleeding_history_or_predisposition"
    suspected: DerivedInput | None = None
    for item in ("bleeding_history", "bleeding_predisposition"):
        found = condition_input(reader, item, as_name=name)
        if found.value:
            return found
        if found.value is None and suspected is None:
            suspected = found
    hb, sex = done["haemoglobin_g_dl"], done["sex"]
    threshold = ANAEMIA_HB_G_DL.get(str(sex.value)) if sex.usable else None
    group = str(sex.value)
    if threshold is not None and hb.usable and _pregnant_when(reader, hb):
        threshold, group = ANAEMIA_HB_PREGNANCY_G_DL, "pregnant"
    if hb.usable and threshold is not None and float(hb.value) < threshold:  # type: ignore[arg-type]
        return DerivedInput(
            name, True, "ok",
            f"haemoglobin {float(hb.value):.1f} g/dL < {threshold:g} (WHO anaemia threshold, {group})",  # type: ignore[arg-type]
            hb.valid_days, None, hb.provenance,
        )  # fmt: skip
    said = (
        f"latest haemoglobin {float(hb.value):.1f} g/dL"  # type: ignore[arg-type]
        if hb.usable
        else f"haemoglobin: {hb.reason()}"
    )
    absent = DerivedInput(
        name, False, "absent",
        f"no bleeding, anaemia or bleeding disorder in the record; {said}",
    )  # fmt: skip
    return absent if suspected is None else or_suspected(suspected, absent)


def _pregnant_when(reader: _Reader, measured: DerivedInput) -> bool:
    """Whether the record shows the patient pregnant on the day ``measured`` was measured
    (:func:`medtwin.risk.context.pregnancies_from`)."""
    from medtwin.record.context import PatientContext
    from medtwin.risk.context import pregnancies_from

    day = measured.provenance[0].date if measured.provenance else None
    if day is None:
        return False
    when = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC) + dt.timedelta(hours=12)
    established, _ = pregnancies_from(reader.facts_of(("Condition",)), reader.observations())
    return PatientContext(pregnancies=established).pregnancy_at(when.timestamp()) is not None


def time_in_range(
    readings: Sequence[tuple[dt.datetime, float]], low: float = 2.0, high: float = 3.0
) -> float:
    """Percent of the time between the first and last INR spent in ``[low, high]``, the INR
    taken to change linearly between consecutive readings (Rosendaal et al. 1993).

    Between two readings ``a`` and ``b`` the linear INR is in range for the fraction of the
    interval that ``[low, high]`` covers of ``[min(a, b), max(a, b)]`` (all of it or none of it
    when ``a == b``).

    >>> day = lambda d: dt.datetime(2024, 1, d, tzinfo=dt.UTC)
    >>> time_in_range([(day(1), 2.0), (day(11), 4.0)])  # in range for the first half
    50.0
    >>> time_in_range([(day(1), 2.5), (day(11), 2.5), (day(21), 1.5)])  # 10 + 5 of 20 days
    75.0
    """
    points = sorted(readings)
    total = inside = 0.0
    for (t0, a), (t1, b) in itertools.pairwise(points):
        span = (t1 - t0).total_seconds()
        if span <= 0:
            continue
        lo, hi = min(a, b), max(a, b)
        if hi == lo:
            frac = 1.0 if low <= lo <= high else 0.0
        else:
            frac = max(0.0, min(hi, high) - max(lo, low)) / (hi - lo)
        total += span
        inside += frac * span
    if total <= 0:
        raise ValueError("time in range needs two INR readings on different days")
    return 100.0 * inside / total


def _vka_first_start(reader: _Reader) -> dt.datetime:
    """When the record's first vitamin K antagonist order began (by the date)."""
    from medtwin.record.medications import atc_classes
    from medtwin.risk.inputs import VKA_ATC

    starts = [
        sf.fact.effective_start
        for sf in reader.orders()
        if sf.fact.effective_start is not None
        and sf.fact.effective_start <= reader.at
        and getattr(sf.fact, "status", None) not in ("entered-in-error", "cancelled", "draft")
        and any(c.startswith(VKA_ATC) for c in atc_classes(sf.fact)[1])
    ]
    return min(starts) if starts else reader.at


def _labile_inr(reader: _Reader, done: Mapping[str, DerivedInput]) -> DerivedInput:
    from medtwin.risk.inputs import YES_NO, DerivedInput, _prov, validity

    name = "labile_inr"
    vka = done["vitamin_k_antagonist"]
    if vka.value is False:
        return DerivedInput(
            name, False, "absent", "not on a vitamin K antagonist (HAS-BLED L applies to one only)"
        )
    if vka.value is None:
        return DerivedInput(
            name, None, "missing", f"vitamin K antagonist: {vka.detail}", None, None,
            vka.provenance, YES_NO,
        )  # fmt: skip
    spec = validity()["inr"]
    window, needed = int(spec["valid_days"]), int(spec["min_readings"])
    low, high = float(spec["target_low"]), float(spec["target_high"])
    cut = float(spec["labile_below_percent"])
    codes = set(spec["codes"])
    # the INRs of the first weeks of treatment do not count (NICE): from the first VKA order
    first = _vka_first_start(reader)
    settled = first + dt.timedelta(days=int(spec["initiation_days"]))
    if settled > reader.at:
        # still starting: no INR control to judge yet, as when HAS-BLED is taken at the start
        # of anticoagulation (VKA-naive: L is 0)
        return DerivedInput(
            name, False, "computed",
            f"on a vitamin K antagonist since {first.date().isoformat()} "
            f"({(reader.at - first).days} days): the time in range is judged after the first "
            f"{int(spec['initiation_days'])} days (from {settled.date().isoformat()}); until "
            "then no labile INR, as at the start of anticoagulation",
            window, None, vka.provenance,
        )  # fmt: skip
    inrs = [
        sf
        for sf in reader.observations()
        if sf.fact.code is not None
        and sf.fact.code.code in codes
        and getattr(sf.fact, "value_num", None) is not None
        and sf.fact.effective_start is not None
        and 0 <= (reader.at - sf.fact.effective_start).days <= window
        and sf.fact.effective_start >= settled
    ]
    days = {sf.fact.effective_start.date() for sf in inrs}  # type: ignore[union-attr]
    if len(inrs) < needed or len(days) < 2:
        left_out = (
            f"the INRs of the first {int(spec['initiation_days'])} days of treatment (until "
            f"{settled.date().isoformat()}) are not counted, and "
            if settled > reader.at - dt.timedelta(days=window)
            else ""
        )
        return DerivedInput(
            name, None, "missing",
            f"on a vitamin K antagonist ({vka.detail}); {left_out}{len(inrs)} INR reading(s) "
            f"of the last {window} days count: at least {needed} on different days are needed "
            "for the time in range",
            window, None, vka.provenance, YES_NO,
        )  # fmt: skip
    ttr = time_in_range(
        [(sf.fact.effective_start, float(sf.fact.value_num)) for sf in inrs],  # type: ignore[attr-defined,misc]
        low,
        high,
    )
    labile = ttr < cut
    return DerivedInput(
        name, labile, "computed",
        f"time in INR range {low:g}-{high:g}: {ttr:.0f} % over {len(inrs)} readings in the last "
        f"{window} days ({'<' if labile else '>='} {cut:g} %)",
        window, None, tuple(_prov(sf, reader.at) for sf in inrs),
    )  # fmt: skip


def af_inputs(reader: _Reader, done: Mapping[str, DerivedInput]) -> dict[str, DerivedInput]:
    """The inputs of CHA2DS2-VASc and HAS-BLED (and the record population they need), given
    the common inputs already derived (``done``: age, sex, blood pressure, creatinine,
    medication groups)."""
    out: dict[str, DerivedInput] = {
        name: condition_input(reader, name)
        for name in (
            "clinical_ascvd",
            "atrial_fibrillation",
            "mitral_stenosis",
            "congestive_heart_failure",
            "stroke_tia_thromboembolism",
            "vascular_disease",
            "alcohol_excess",
        )
    }
    out["severe_hypercholesterolaemia"] = _severe_hypercholesterolaemia(reader)
    out["hypertension"] = _hypertension(reader, done)
    out["hypertension_uncontrolled"] = _uncontrolled(reader, done)
    out["abnormal_renal_function"] = _renal(reader, done)
    out["abnormal_liver_function"] = _liver(reader)
    out["stroke_history"] = condition_input(reader, "stroke", as_name="stroke_history")
    haemoglobin = reader.measured("haemoglobin_g_dl")
    out["bleeding_history_or_predisposition"] = _bleeding(
        reader, {**done, "haemoglobin_g_dl": haemoglobin}
    )
    out["labile_inr"] = _labile_inr(reader, done)
    return out
