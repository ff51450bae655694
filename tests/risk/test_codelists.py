"""The published SNOMED CT code lists medtwin reads conditions with (``risk/data/codelists/``):
sound ids, derived lists that follow their rules, and a UK GP record whose diagnoses are coded
with the specific concepts of the QOF register clusters, read by CHA2DS2-VASc, HAS-BLED, the
PCE and QRISK3."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from tests.risk.test_uk_record import AT, SCT, _bundle, _entry, imported

from medtwin.record.codes import snomed_check_digit_ok
from medtwin.risk.af_inputs import (
    CodeListError,
    _snomed,
    code_list,
    code_list_sources,
    condition_sets,
)
from medtwin.risk.from_record import evaluate
from medtwin.store.sql import SqlStore


def test_every_list_is_described_and_its_ids_are_sound() -> None:
    """Every CSV of the folder is described in sources.toml (and every entry has its CSV); every
    id passes its Verhoeff check digit; the count a description states is the list's length."""
    folder = resources.files("medtwin.risk").joinpath("data/codelists")
    files = {p.name.removesuffix(".csv") for p in folder.iterdir() if p.name.endswith(".csv")}
    assert files == set(code_list_sources())
    assert {"qof_afib_cod", "qof_hyp_cod", "qof_chd_cod", "qof_strk_cod"} <= files
    for name, entry in code_list_sources().items():
        codes = code_list(name)
        assert len(codes) >= 10, name
        bad = [c for c in codes if not snomed_check_digit_ok(c)]
        assert not bad, (name, bad)
        stated = re.search(r"\((\d+) concepts\)", str(entry["what"]))
        assert stated is not None and int(stated.group(1)) == len(codes), name
        if name.startswith("qof_"):
            assert str(entry["cluster"]).lower() == name.removeprefix("qof_"), name
            assert re.search(r"commit [0-9a-f]{40}$", str(entry["source"])), name


def test_the_derived_lists_follow_their_rules() -> None:
    """A derived list is exactly the concepts of its parent whose term its first pattern finds
    and its second does not, with the parent's terms."""
    derived = {n: e for n, e in code_list_sources().items() if "derived_from" in e}
    assert set(derived) == {
        "medtwin_mi_of_chd_cod",
        "medtwin_haemorrhagic_of_strk_cod",
        "medtwin_migraine_of_bristol",
        "medtwin_smi_of_mh_cod",
    }
    for name, entry in derived.items():
        keep, drop = (re.compile(p, re.IGNORECASE) for p in entry["rule"])
        parent = code_list(str(entry["derived_from"]))
        expected = {c: t for c, t in parent.items() if keep.search(t) and not drop.search(t)}
        assert dict(code_list(name)) == expected, name
    infarctions = code_list("medtwin_mi_of_chd_cod")
    assert "399211009" in infarctions  # History of myocardial infarction
    assert "4557003" not in infarctions  # Preinfarction syndrome (unstable angina)
    bleeds = code_list("medtwin_haemorrhagic_of_strk_cod")
    assert "274100004" in bleeds  # Cerebral hemorrhage
    assert "230706003" not in bleeds  # Hemorrhagic cerebral infarction: an infarction (I63)


def test_what_each_condition_list_takes_from_the_published_lists() -> None:
    sets = condition_sets()
    haemorrhage = "274100004"  # Cerebral hemorrhage (STRK_COD)
    lacunar = "230698000"  # Lacunar infarction (STRK_COD)
    assert haemorrhage in sets["stroke"]["snomed"] and lacunar in sets["stroke"]["snomed"]
    for name in ("stroke_tia_thromboembolism", "clinical_ascvd", "qrisk3_prior_cvd"):
        assert lacunar in sets[name]["snomed"] and haemorrhage not in sets[name]["snomed"], name
        assert "1156027008" not in sets[name]["snomed"], name  # dural sinus thrombus
    assert "87343002" in sets["qrisk3_prior_cvd"]["snomed"]  # Prinzmetal angina: CHD for QRISK3
    assert "87343002" not in sets["clinical_ascvd"]["snomed"]  # not atherosclerotic
    assert "843821000000102" in sets["hypertension"]["snomed"]  # Stage 1 hypertension (NICE)
    assert "63491006" in sets["vascular_disease"]["snomed"]  # Intermittent claudication
    assert "194828000" not in sets["vascular_disease"]["snomed"]  # angina is not V (Lip 2010)
    # every id the lists own stays counted (the published lists add, they do not replace)
    assert "426749004" in sets["atrial_fibrillation"]["snomed"]


def test_a_bad_list_or_exclusion_is_named() -> None:
    with pytest.raises(CodeListError, match="unknown code list 'qof_nope_cod'"):
        code_list("qof_nope_cod")
    with pytest.raises(CodeListError, match=r"\[x\] excludes codes that none of its lists holds"):
        _snomed("x", {"snomed_lists": ["qof_afib_cod"], "snomed_exclude": ["22298006"]})


def _with_conditions(*conditions: tuple[str, str, str]) -> dict[str, object]:
    bundle = _bundle()
    for i, (code, display, onset) in enumerate(conditions):
        bundle["entry"].append(_entry(f"c{i}", {
            "resourceType": "Condition",
            "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
            "subject": {"reference": "Patient/uk-1"}, "onsetDateTime": onset,
        }))  # fmt: skip
    return bundle


def test_af_scores_from_diagnoses_coded_as_a_uk_gp_register_codes_them(
    store: SqlStore, tmp_path: Path
) -> None:
    """A man of 62 whose AF, heart failure, hypertension, stroke and claudication are each coded
    with a specific concept of the QOF clusters (none of which medtwin listed before): C1 H1 S2
    V1 = CHA2DS2-VASc 5. Before the lists, the same record had no AF and so no score."""
    bundle = _with_conditions(
        ("1010405004", "Paroxysmal atrial fibrillation with rapid ventricular response", "2022-03-01"),
        ("703272007", "Heart failure with reduced ejection fraction", "2023-01-10"),
        ("843821000000102", "Stage 1 hypertension (National Institute for Health and Clinical "
         "Excellence 2011)", "2019-06-01"),
        ("230698000", "Lacunar infarction", "2021-08-15"),
        ("63491006", "Intermittent claudication", "2020-02-02"),
    )  # fmt: skip
    pid = imported(store, tmp_path, bundle)
    out = evaluate(store, pid, AT, scores=["cha2ds2_vasc", "has_bled"], variation=False)
    items = out.inputs
    assert items["atrial_fibrillation"].value is True
    assert "1010405004" in items["atrial_fibrillation"].detail
    for name in ("congestive_heart_failure", "hypertension", "stroke_tia_thromboembolism"):
        assert items[name].value is True and items[name].status == "ok", name
    assert items["vascular_disease"].value is True
    assert items["stroke_history"].value is True  # HAS-BLED S: the lacunar infarction
    cha, _ = out.scores
    assert cha.status == "computed" and cha.value == 5.0
    # the first-event scores give way: the stroke and the claudication are clinical ASCVD
    assert out.inputs["clinical_ascvd"].value is True and out.inputs["prior_cvd"].value is True


def test_a_haemorrhagic_stroke_is_has_bled_s_but_not_cha2ds2_vasc_s2(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    bundle = _with_conditions(
        ("49436004", "Atrial fibrillation", "2022-03-01"),
        ("274100004", "Cerebral hemorrhage", "2021-08-15"),
    )
    pid = imported(sqlite_store, tmp_path, bundle)
    out = evaluate(sqlite_store, pid, AT, scores=["cha2ds2_vasc", "qrisk3_10y"], variation=False)
    assert out.inputs["stroke_history"].value is True
    assert out.inputs["stroke_tia_thromboembolism"].value is False
    assert out.inputs["clinical_ascvd"].value is False and out.inputs["prior_cvd"].value is False
    cha, qrisk = out.scores
    assert cha.status == "computed" and cha.value == 0.0  # a man of 62, nothing else
    assert qrisk.status == "computed"  # QRISK3's population: no CHD, ischaemic stroke or TIA


def test_rheumatoid_arthritis_coded_by_its_serotype_counts_for_qrisk3(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """ "Seropositive rheumatoid arthritis" (RARTH_COD) is QRISK3's rheumatoid arthritis: the
    risk is the one given with the item set directly."""
    from medtwin.risk.from_record import parse_given

    bundle = _with_conditions(("239791005", "Seropositive rheumatoid arthritis", "2015-04-01"))
    pid = imported(sqlite_store, tmp_path, bundle)
    report = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False)
    (read,), item = report.scores, report.inputs["rheumatoid_arthritis"]
    assert item.value is True and "239791005" in item.detail
    no = parse_given(["rheumatoid_arthritis=no"])
    yes = parse_given(["rheumatoid_arthritis=yes"])
    (without,) = evaluate(
        sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False, given=no
    ).scores
    (given_yes,) = evaluate(
        sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False, given=yes
    ).scores
    assert read.status == without.status == "computed"
    assert read.value == given_yes.value and read.value > without.value  # type: ignore[operator]


def test_qrisk3s_conditions_coded_as_uk_general_practice_codes_them(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """Migraine without aura, paranoid schizophrenia, SLE with organ involvement and erectile
    dysfunction (none of them the one parent concept medtwin listed before) are QRISK3's items;
    drug-induced lupus and a delusional disorder are not."""
    bundle = _with_conditions(
        ("56097005", "Migraine without aura", "2001-05-01"),
        ("64905009", "Paranoid schizophrenia", "1995-09-12"),
        ("201437007", "Systemic lupus erythematosus with organ/system involvement", "2010-01-20"),
        ("860914002", "Erectile dysfunction", "2024-02-02"),
    )
    pid = imported(sqlite_store, tmp_path, bundle)
    report = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False)
    for name, code in (
        ("migraine", "56097005"),
        ("severe_mental_illness", "64905009"),
        ("sle", "201437007"),
        ("erectile_dysfunction", "860914002"),
    ):
        item = report.inputs[name]
        assert item.value is True and code in item.detail, name
    assert report.scores[0].status == "computed"


def test_drug_induced_lupus_and_other_psychoses_are_not_qrisk3s_items() -> None:
    sets = condition_sets()
    assert "201436003" not in sets["sle"]["snomed"]  # Drug-induced systemic lupus erythematosus
    assert "200936003" not in sets["sle"]["snomed"]  # Lupus erythematosus (may be cutaneous)
    assert "95408003" in sets["sle"]["snomed"]  # Systemic lupus erythematosus arthritis
    assert "48500005" not in sets["severe_mental_illness"]["snomed"]  # Delusional disorder
    assert "31027006" not in sets["severe_mental_illness"]["snomed"]  # Schizotypal personality
    assert "38368003" in sets["severe_mental_illness"]["snomed"]  # Schizoaffective, bipolar type
    assert "193031009" not in sets["migraine"]["snomed"]  # Cluster headache syndrome
    assert "104591000000101" not in sets["migraine"]["snomed"]  # Migraine prophylaxis


def test_a_condition_coded_several_ways_matches_by_any_coding(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    """An EHR codes a diagnosis in SNOMED CT and ICD-10-CM at once. The fact keeps the SNOMED
    CT coding, here a concept the diabetes lists do not hold ("Disorder of kidney due to
    diabetes mellitus"); the ICD-10-CM E11.21 beside it is type 2 diabetes, and is read."""
    bundle = _bundle()
    bundle["entry"].append(_entry("dm", {
        "resourceType": "Condition",
        "code": {"coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.21",
             "display": "Type 2 diabetes mellitus with diabetic nephropathy"},
            {"system": SCT, "code": "127013003",
             "display": "Disorder of kidney due to diabetes mellitus"},
        ]},
        "subject": {"reference": "Patient/uk-1"}, "onsetDateTime": "2019-04-01",
    }))  # fmt: skip
    pid = imported(sqlite_store, tmp_path, bundle)
    d = evaluate(sqlite_store, pid, AT, scores=["qrisk3_10y"], variation=False).inputs
    assert d["diabetes"].value is True and "127013003" in d["diabetes"].detail
    assert d["diabetes_type"].value == "type2"
