"""The fast FHIR validator against ``fhir.resources.R4B`` and the FHIR R4 specification.

- every shared FHIR resource (Synthea bundles, the 10-patient bulk export, US Core
  bundles) gets the same verdict from ours and from ``fhir.resources.R4B``, and
  where ``fhir.resources`` rejects, ours names the bad element;
- targeted bad resources, each with the path of its issue;
- the places where we follow the R4 specification rather than ``fhir.resources``,
  with the specification reference;
- Hypothesis: mutants of real resources that ``fhir.resources`` rejects, ours rejects.

Data: ``$MEDTWIN_SHARED_DATA`` (default ``<repo>/../shared/data``); the tests that
need it skip when it is missing, and fail instead under ``CI=true``.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conftest import shared_data_dir
from medtwin.ingest.fhir_schema import FhirIssue, known_resource_types, validate_resource

REPO = Path(__file__).resolve().parents[2]

# A resource as found in the shared data: (where it came from, the parsed JSON).
Located = tuple[str, dict[str, Any]]


def shared_fhir_dir() -> Path:
    """Return ``<shared data>/fhir``; skip when it is missing, or fail under CI."""
    return shared_data_dir() / "fhir"


@cache
def _load(path: Path) -> tuple[Located, ...]:
    found: list[Located] = []
    for bundle_path in sorted((path / "synthea-r4").glob("*.json")):
        bundle = orjson.loads(bundle_path.read_bytes())
        for index, entry in enumerate(bundle["entry"]):
            found.append((f"synthea-r4/{bundle_path.name} entry[{index}]", entry["resource"]))
    for ndjson_path in sorted((path / "bulk-10-patients").glob("*.ndjson")):
        if ndjson_path.name == "log.ndjson":  # the export's log, not resources
            continue
        for number, line in enumerate(ndjson_path.read_bytes().splitlines(), start=1):
            if line.strip():
                found.append(
                    (f"bulk-10-patients/{ndjson_path.name} line {number}", orjson.loads(line))
                )
    for json_path in sorted((path / "uscore").glob("*.json")):
        document = orjson.loads(json_path.read_bytes())
        if document.get("resourceType") == "Bundle":
            for index, entry in enumerate(document.get("entry", [])):
                found.append((f"uscore/{json_path.name} entry[{index}]", entry["resource"]))
        else:
            found.append((f"uscore/{json_path.name}", document))
    return tuple(found)


@pytest.fixture(scope="module")
def shared_resources() -> tuple[Located, ...]:
    """Every resource of the shared FHIR data, with its location."""
    resources = _load(shared_fhir_dir())
    assert len(resources) > 30_000
    return resources


def fhir_resources_error(resource: dict[str, Any]) -> Exception | None:
    """Validate with ``fhir.resources.R4B``; return the error, or None when it accepts."""
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as error:  # ValidationError, or e.g. KeyError for an unknown type
        return error
    return None


def paths(issues: list[FhirIssue]) -> list[str]:
    return [issue.path for issue in issues]


# ------------------------------------------------------------------------- shared data
# The shared data's two invalid resources (US Core examples): resource type -> path.
KNOWN_INVALID = {
    "Media": "Media.content.link",  # Attachment has no 'link'
    "Observation": "Observation.effectivePeriod.stop",  # Period has start and end
}


def pydantic_path(resource_type: str, loc: tuple[int | str, ...]) -> str:
    """Write a pydantic error location the way ours does: ``Patient.name[0].given``."""
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def test_ours_on_every_shared_resource(shared_resources: tuple[Located, ...]) -> None:
    rejected = {location: validate_resource(resource) for location, resource in shared_resources}
    rejected = {location: issues for location, issues in rejected.items() if issues}
    assert len(rejected) == 2, rejected
    for location, issues in rejected.items():
        assert location.startswith("uscore/"), location
        assert len(issues) == 1, issues
        assert issues[0].path in KNOWN_INVALID.values(), issues


def test_agrees_with_fhir_resources(shared_resources: tuple[Located, ...]) -> None:
    """Same verdict on every shared resource; ours names the element fhir.resources names."""
    disagreements: list[str] = []
    rejected_by_both = 0
    for location, resource in shared_resources:
        error = fhir_resources_error(resource)
        issues = validate_resource(resource)
        if error is None and issues:
            disagreements.append(f"{location}: only ours rejects: {issues}")
        elif error is not None and not issues:
            disagreements.append(f"{location}: only fhir.resources rejects: {error}")
        elif error is not None:
            rejected_by_both += 1
            assert isinstance(error, ValidationError), (location, error)
            for detail in error.errors():
                expected = pydantic_path(resource["resourceType"], detail["loc"])
                assert expected in paths(issues), (location, expected, issues)
            assert KNOWN_INVALID[resource["resourceType"]] in paths(issues)
    assert not disagreements, "\n".join(disagreements[:20])
    assert rejected_by_both == len(KNOWN_INVALID)


# -------------------------------------------------------------------- targeted cases
def observation(**elements: Any) -> dict[str, Any]:
    """A valid Observation, with elements added, replaced or (value ``...``) removed."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2021-02-03T10:00:00+01:00",
        "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
    }
    for name, value in elements.items():
        if value is ...:
            del resource[name]
        else:
            resource[name] = value
    return resource


def patient(**elements: Any) -> dict[str, Any]:
    """A valid Patient with the given elements."""
    return {"resourceType": "Patient", "id": "p1", **elements}


# (resource, path of the expected issue, does fhir.resources 8.3.0 reject it too?)
# Where it does not, the FHIR R4 rule we apply is cited.
BAD: dict[str, tuple[object, str, bool]] = {
    "missing code": (observation(code=...), "Observation.code", True),
    "missing status": (observation(status=...), "Observation.status", True),
    "value as string": (
        observation(valueQuantity={"value": "5.4"}),
        "Observation.valueQuantity.value",
        False,  # R4 json.html: decimal is a JSON number
    ),
    "array where single": (observation(code=[{"text": "x"}]), "Observation.code", True),
    "single where array": (patient(name={"family": "Doe"}), "Patient.name", True),
    "two value[x]": (observation(valueString="5.4"), "Observation.valueString", True),
    "2021-02-30": (patient(birthDate="2021-02-30"), "Patient.birthDate", True),
    "dateTime without zone": (
        observation(effectiveDateTime="2021-02-03T10:00:00"),
        "Observation.effectiveDateTime",
        True,
    ),
    "bad status code": (
        observation(status="done"),
        "Observation.status",
        False,  # required binding http://hl7.org/fhir/R4/valueset-observation-status.html
    ),
    "unknown resourceType": ({"resourceType": "Patientt"}, "Resource.resourceType", True),
    "abstract resourceType": (
        {"resourceType": "DomainResource"},
        "Resource.resourceType",
        False,  # R4 domainresource.html: abstract, no instances
    ),
    "empty string": (
        patient(name=[{"given": ["Ann", ""]}]),
        "Patient.name[0].given[1]",
        True,
    ),
    "unknown element": (
        observation(effectivePeriod={"stop": "2021"}, effectiveDateTime=...),
        "Observation.effectivePeriod.stop",
        True,
    ),
    "missing required nested": (
        patient(extension=[{"valueString": "x"}]),
        "Patient.extension[0].url",
        True,
    ),
    "bad primitive extension": (
        patient(birthDate="1970-01-01", _birthDate={"extension": [{"url": 7}]}),
        "Patient._birthDate.extension[0].url",
        True,
    ),
    "bad contained resource": (
        patient(contained=[{"resourceType": "Observation", "status": "final"}]),
        "Patient.contained[0].code",
        True,
    ),
    "contained without resourceType": (
        patient(contained=[{"id": "x"}]),
        "Patient.contained[0].resourceType",
        False,  # R4 json.html#resources: resourceType is always present
    ),
    "bad resource in bundle": (
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": patient(gender=["female"])}],
        },
        "Bundle.entry[0].resource.gender",
        True,
    ),
    "integer out of range": (
        patient(multipleBirthInteger=2**31),
        "Patient.multipleBirthInteger",
        True,
    ),
    "integer as float": (
        patient(multipleBirthInteger=2.0),
        "Patient.multipleBirthInteger",
        False,  # R4 datatypes.html#integer: no fraction
    ),
    "boolean as string": (
        patient(active="true"),
        "Patient.active",
        False,  # R4 json.html: boolean is JSON true or false
    ),
    "reference not a string": (
        observation(subject={"reference": 42}),
        "Observation.subject.reference",
        True,
    ),
    "bad id": (patient(id="p 1"), "Patient.id", True),
    "id over 64": (patient(id="a" * 65), "Patient.id", False),  # R4 datatypes.html#id
    "code with two spaces": (patient(gender="fe  male"), "Patient.gender", True),
    "bad instant": (observation(issued="2021-02-03"), "Observation.issued", True),
    "bad time": (
        observation(valueTime="25:00:00", valueQuantity=...),
        "Observation.valueTime",
        True,
    ),
    "bad base64": (patient(photo=[{"data": "abc"}]), "Patient.photo[0].data", True),
    "uri with space": (
        observation(code={"coding": [{"system": "http://loinc org"}]}),
        "Observation.code.coding[0].system",
        False,  # R4 datatypes.html#uri: regex \S*
    ),
    "null": (patient(birthDate=None), "Patient.birthDate", False),  # R4 json.html: no nulls
    "empty array": (patient(name=[]), "Patient.name", False),  # R4 json.html: never empty
    "empty object": (observation(code={}), "Observation.code", False),  # ele-1
    "fhir_comments": (patient(fhir_comments="x"), "Patient.fhir_comments", False),  # not in R4
    "resourceType in a datatype": (
        patient(name=[{"resourceType": "HumanName", "family": "Doe"}]),
        "Patient.name[0].resourceType",
        False,  # R4 json.html#resources: resourceType only on resources
    ),
    "value[x] and another _value[x]": (
        observation(_valueString={"id": "v"}),
        "Observation._valueString",
        False,  # both valueQuantity and valueString present: R4 formats.html#choice
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_resource(case: str) -> None:
    resource, path, fhir_resources_rejects = BAD[case]
    issues = validate_resource(resource)
    assert path in paths(issues), issues
    assert all(isinstance(issue.message, str) and issue.message for issue in issues)
    assert isinstance(resource, dict)
    assert (fhir_resources_error(resource) is not None) is fhir_resources_rejects


@pytest.mark.parametrize("value", [None, [], "Patient", 3, [{"resourceType": "Patient"}]])
def test_not_an_object(value: object) -> None:
    assert paths(validate_resource(value)) == ["Resource"]


def test_messages() -> None:
    (issue,) = validate_resource(
        observation(effectivePeriod={"stop": "2021"}, effectiveDateTime=...)
    )
    assert issue == FhirIssue(
        "Observation.effectivePeriod.stop",
        "unknown element 'stop' (Period allows: start, end, id, extension)",
    )
    (issue,) = validate_resource(observation(effectiveDateTime="2021-02-03T10:00:00"))
    assert "time-zone" in issue.message
    (issue,) = validate_resource(patient(birthDate="2021-02-30"))
    assert "calendar" in issue.message


ABSENT = {
    "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
    "valueCode": "unknown",
}

GOOD: dict[str, object] = {
    "minimal": {"resourceType": "Patient"},
    "partial dates": patient(birthDate="1970-02", deceasedDateTime="2020"),
    "leap day": patient(birthDate="2000-02-29"),
    "leap second": observation(effectiveDateTime="2016-12-31T23:59:60Z"),
    "status by extension": observation(status=..., _status={"extension": [ABSENT]}),
    "primitive array with nulls": patient(
        name=[{"given": ["Ann", None], "_given": [None, {"extension": [ABSENT]}]}]
    ),
    "base64 with line breaks": patient(photo=[{"data": "QUJD\nREVG"}]),
    "contained": patient(contained=[observation()]),
    "both value and extension": observation(_status={"id": "s"}),
}


@pytest.mark.parametrize("case", list(GOOD))
def test_good_resource(case: str) -> None:
    assert validate_resource(GOOD[case]) == []


# Valid by the FHIR R4 specification, but rejected by fhir.resources 8.3.0.
SPEC_VALID_FHIR_RESOURCES_REJECTS: dict[str, dict[str, Any]] = {
    # json.html#primitive: every primitive element may have a ``_name`` sibling,
    # Extension.value[x] too; the models lack ``valueString__ext`` etc.
    "extension _valueString": patient(
        extension=[{"url": "http://x", "_valueString": {"extension": [{"url": "http://y"}]}}]
    ),
    # datatypes.html#uuid: any RFC 4122 UUID; pydantic's UUID4 requires version 4.
    "uuid version 1": patient(
        extension=[
            {"url": "http://x", "valueUuid": "urn:uuid:c757873d-ec9a-11e3-a141-556f43239520"}
        ]
    ),
    # extensibility.html#Special-Case: a required primitive may be replaced by an
    # extension; the models accept it for element_required but not for choice groups.
    "required choice by extension": {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [
            {
                "linkId": "1",
                "type": "boolean",
                "enableWhen": [
                    {
                        "question": "q0",
                        "operator": "exists",
                        "_answerBoolean": {"extension": [ABSENT]},
                    }
                ],
            }
        ],
    },
}


@pytest.mark.parametrize("case", list(SPEC_VALID_FHIR_RESOURCES_REJECTS))
def test_documented_disagreement(case: str) -> None:
    resource = SPEC_VALID_FHIR_RESOURCES_REJECTS[case]
    assert validate_resource(resource) == []
    assert fhir_resources_error(resource) is not None


def test_known_resource_types() -> None:
    types = known_resource_types()
    assert {"Patient", "Observation", "Bundle", "Parameters", "SubscriptionTopic"} <= types
    assert not types & {"Resource", "DomainResource", "Period", "BackboneElement"}
    assert len(types) == 141  # FHIR R4B


def test_deep_nesting_does_not_raise() -> None:
    extension: dict[str, Any] = {"url": "http://x", "valueString": "leaf"}
    for _ in range(5000):
        extension = {"url": "http://x", "extension": [extension]}
    issues = validate_resource(patient(extension=[extension]))
    assert issues and issues[0].path == "Patient"


def test_schema_is_up_to_date() -> None:
    """``src/medtwin/ingest/fhir_r4b_schema.json`` is what the generator writes now."""
    spec = importlib.util.spec_from_file_location(
        "gen_fhir_schema", REPO / "tools" / "gen_fhir_schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


# ----------------------------------------------------------------------- Hypothesis
WRONG_VALUES: list[object] = [
    None,
    0,
    -1,
    1.5,
    2**40,
    True,
    "",
    " ",
    "x",
    "1",
    "true",
    "a  b",
    "\u00a0",
    "2021-02-30",
    "2021-02-03T10:00:00",
    [],
    [None],
    [1],
    {},
    {"x": 1},
    [{"x": 1}],
]


def _locations(node: object, trail: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Yield the path of every dict key and list item below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*trail, key)
            yield from _locations(value, (*trail, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*trail, index)
            yield from _locations(value, (*trail, index))


@pytest.fixture(scope="module")
def mutation_seeds(shared_resources: tuple[Located, ...]) -> list[dict[str, Any]]:
    """Twelve valid resources of each type in the shared data, spread over the files."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, resource in shared_resources:
        if not validate_resource(resource):
            by_type[resource["resourceType"]].append(resource)
    seeds: list[dict[str, Any]] = []
    for kind in sorted(by_type):
        members = by_type[kind]
        seeds += members[:: max(1, len(members) // 12)][:12]
    return seeds


@st.composite
def mutants(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """A real resource with one key deleted or renamed, or one value replaced."""
    resource = copy.deepcopy(draw(st.sampled_from(seeds)))
    where = draw(st.sampled_from(list(_locations(resource))))
    parent: Any = resource
    for step in where[:-1]:
        parent = parent[step]
    last = where[-1]
    action = draw(st.sampled_from(["delete", "rename", "replace"]))
    if action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(last, str):
        new = draw(
            st.sampled_from([f"{last}X", f"{last}s", f"_{last}", last.upper(), last[:-1] or "x"])
        )
        parent[new] = parent.pop(last)
    else:
        action = "replace"
        parent[last] = copy.deepcopy(draw(st.sampled_from(WRONG_VALUES)))
    return resource, f"{action} {'.'.join(map(str, where))}"


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutants_rejected_by_fhir_resources_are_rejected(
    mutation_seeds: list[dict[str, Any]], data: st.DataObject
) -> None:
    resource, description = data.draw(mutants(mutation_seeds))
    issues = validate_resource(resource)  # never raises
    if fhir_resources_error(resource) is not None:
        assert issues, f"{description}: fhir.resources rejects, ours accepts"


# ---------------------------------------------------------------- fast path vs walker
# validate_resource answers valid resources from the per-shape checkers and falls back to
# the walker otherwise; the two must agree: never valid where the walker finds an issue.
def _walker_issues(resource: dict[str, Any]) -> list[FhirIssue]:
    """The walker alone, as validate_resource ran before the fast path."""
    from medtwin.ingest import fhir_schema

    schema = fhir_schema._load()
    type_ = schema.resources[resource["resourceType"]]
    issues: list[FhirIssue] = []
    try:
        fhir_schema._check_object(resource, type_, type_.name, issues)
    except RecursionError:
        issues.append(FhirIssue(type_.name, "nested too deeply to check"))
    return issues


def _fast_says_valid(resource: object) -> bool:
    from medtwin.ingest import fhir_schema

    fhir_schema._load()
    return bool(fhir_schema._resource_valid(resource))


def test_fast_path_agrees_with_walker_on_shared_data(
    shared_resources: tuple[Located, ...],
) -> None:
    for location, resource in shared_resources:
        walker_valid = not _walker_issues(resource)
        assert _fast_says_valid(resource) == walker_valid, location


_MUTANT_VALUES: list[Any] = [
    None,
    "",
    " ",
    "\u00a0",
    "\u2003\u3000",
    "x",
    "a  b",
    " a",
    "\u00e9t\u00e9",
    0,
    -1,
    1.5,
    2**31,
    -(2**31) - 1,
    True,
    [],
    {},
    [None],
    ["x"],
    [{}],
    {"x": 1},
    "2020-02-30",
    "2020-02-29",
    "2021-02-29",
    "1900-02-29",
    "2000-02-29",
    "2020-04-31",
    "2020-13-01",
    "2020-01-01T10:00:00",
    "2020-01-01T10:00:00Z",
    "urn:uuid:x",
    "final",
    "amended",
    "QUJD",
    "QUJD\n",
    "abc",
    float("inf"),
    {"extension": [{"url": "http://x", "valueString": "y"}]},
]
_MUTANT_KEYS = [
    "valueString",
    "valueQuantity",
    "valueBoolean",
    "effectivePeriod",
    "effectiveDateTime",
    "_status",
    "_value",
    "_code",
    "_given",
    "unknownElement",
    "extension",
    "id",
    "text",
    "resourceType",
    "fhir_comments",
    "contained",
]


def _mutate(resource: dict[str, Any], rng: Any) -> dict[str, Any]:
    """One random change: a key deleted, replaced, added (a choice sibling, a ``_x``
    extension, an unknown element) or an array item replaced."""
    mutant = copy.deepcopy(resource)
    nodes: list[tuple[Any, Any]] = []  # (container, key or index)
    stack: list[Any] = [mutant]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                nodes.append((node, key))
                stack.append(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                nodes.append((node, index))
                stack.append(value)
    container, key = nodes[rng.randrange(len(nodes))]
    choice = rng.random()
    value = copy.deepcopy(rng.choice(_MUTANT_VALUES))
    if isinstance(container, dict) and choice < 0.25:
        del container[key]
    elif isinstance(container, dict) and choice < 0.5:
        siblings = [*_MUTANT_KEYS, "_" + str(key)]
        container[rng.choice(siblings)] = value
    else:
        container[key] = value
    return mutant


def test_fast_path_never_accepts_what_the_walker_rejects(
    shared_resources: tuple[Located, ...],
) -> None:
    """40,000 seeded mutants of real resources: the fast path is never looser."""
    import random

    rng = random.Random(20261206)
    pool = [resource for _, resource in shared_resources]
    checked = invalid = 0
    for _ in range(40_000):
        mutant = _mutate(rng.choice(pool), rng)
        for _ in range(rng.randrange(3)):
            mutant = _mutate(mutant, rng)
        if not isinstance(mutant.get("resourceType"), str) or mutant["resourceType"] not in (
            known_resource_types()
        ):
            continue
        walker = _walker_issues(mutant)
        checked += 1
        invalid += bool(walker)
        if walker:
            assert not _fast_says_valid(mutant), (walker, mutant)
            assert validate_resource(mutant) == walker
        else:
            assert validate_resource(mutant) == []
    assert checked > 35_000 and invalid > 15_000, (checked, invalid)


def test_fast_path_leaves_rare_valid_forms_to_the_walker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid forms the shape checkers do not take (the walker accepts them)."""
    from medtwin.ingest import fhir_schema

    schema = fhir_schema._load()
    for name in ("Observation", "Patient", "HumanName", "CodeableConcept", "Extension"):
        monkeypatch.setattr(schema.types[name], "shapes", {})  # compiled afresh, within limits
    monkeypatch.setattr(fhir_schema, "_compiled", 0)
    extension = {"extension": [{"url": "http://example.org/why", "valueCode": "unknown"}]}
    observation = {
        "resourceType": "Observation",
        "_status": extension,  # required status given only by its extension
        "code": {"text": "x"},
    }
    patient = {
        "resourceType": "Patient",
        "name": [{"given": [None, "B"], "_given": [extension, None]}],
    }
    for resource in (observation, patient):
        assert not _fast_says_valid(resource)
        assert validate_resource(resource) == [] == _walker_issues(resource)


def test_base64_of_non_ascii_text_is_an_issue_not_a_crash() -> None:
    (issue,) = validate_resource(
        {"resourceType": "Binary", "contentType": "text/plain", "data": "\u00e9t\u00e9"}
    )
    assert issue.path == "Binary.data"
    assert "not valid base64" in issue.message


def test_shape_compiling_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects whose keys come in ever new orders cannot make every object a compile:
    beyond the limit the walker checks them, with the same verdicts."""
    import itertools

    from medtwin.ingest import fhir_schema

    schema = fhir_schema._load()
    extension_type = schema.types["Extension"]
    monkeypatch.setattr(extension_type, "shapes", {})
    monkeypatch.setattr(schema.types["Patient"], "shapes", {})
    monkeypatch.setattr(fhir_schema, "_SHAPES_MAX", 8)
    monkeypatch.setattr(fhir_schema, "_compiled", 0)
    values = {"valueString": "x", "valueCode": "c", "valueBoolean": True, "valueInteger": 3}
    extensions = [
        dict(order)
        for name, value in values.items()
        for order in itertools.permutations(
            [("url", "http://example.org/e"), ("id", "e1"), (name, value)]
        )
    ]
    assert len({tuple(e) for e in extensions}) == 24
    patient = {"resourceType": "Patient", "extension": extensions}
    assert validate_resource(patient) == []
    assert len(extension_type.shapes) == 8
    bad = {
        "resourceType": "Patient",
        "extension": [*extensions, {"id": "e2", "url": "u", "valueCode": "a b "}],
    }
    (issue,) = validate_resource(bad)
    assert issue.path == "Patient.extension[24].valueCode"
    assert len(extension_type.shapes) == 8
