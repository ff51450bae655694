"""The generated ``__init__`` of the record's frozen dataclasses behaves as dataclasses' own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from medtwin.record._fastinit import fast_init
from medtwin.record.batch import QuarantineItem, ResourceUnit
from medtwin.record.facts import FACT_KINDS, Coding, Identifier, Observation

CLASSES: list[type[Any]] = [Identifier, Coding, *FACT_KINDS.values(), ResourceUnit, QuarantineItem]


def _twin(cls: type[Any]) -> type[Any]:
    """The same fields in a fresh frozen dataclass, with dataclasses' own __init__."""
    fields = [
        (f.name, f.type, dataclasses.field(default=f.default, kw_only=f.kw_only))
        if f.default is not dataclasses.MISSING
        else (f.name, f.type, dataclasses.field(kw_only=f.kw_only))
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(f"Twin{cls.__name__}", fields, frozen=True, slots=True)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_same_signature_values_and_immutability(cls: type[Any]) -> None:
    assert cls.__init__.__code__.co_filename == f"<{cls.__name__}.__init__>"  # generated
    twin = _twin(cls)
    ours = inspect.signature(cls.__init__)
    theirs = inspect.signature(twin.__init__)
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]
    required = {
        f.name: f"{f.name}-value"
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    positional = [
        required[f.name] for f in dataclasses.fields(cls) if f.name in required and not f.kw_only
    ]
    keywords = {name: value for name, value in required.items() if value not in positional}
    made = cls(*positional, **keywords)
    reference = twin(*positional, **keywords)
    assert dataclasses.astuple(made) == dataclasses.astuple(reference)
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, first, "changed")
    assert pickle.loads(pickle.dumps(made)) == made


def test_missing_and_unknown_arguments_raise_as_before() -> None:
    with pytest.raises(TypeError, match="source_id"):
        Observation(source="a")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        Observation(source="a", source_id="b", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Observation("a", "b")  # type: ignore[misc]  # keyword-only
    coding = Coding("http://loinc.org", "8302-2")
    assert (coding.system, coding.code, coding.display) == ("http://loinc.org", "8302-2", None)
    assert dataclasses.replace(coding, display="Body height").display == "Body height"


def test_classes_with_default_factories_keep_their_own_init() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    before = WithFactory.__init__
    fast_init(WithFactory)
    assert WithFactory.__init__ is before
    assert WithFactory().items == []
