"""`core.Record`: declared like `typing.NamedTuple`, built as the same `collections.namedtuple`."""

from __future__ import annotations

import pickle

import pytest
from comet_replicate.core import Record
from comet_replicate.core.schedule import PollTuning


class Point(Record):
    """A point."""

    x: int
    y: float = 0.5

    def doubled(self) -> Point:
        return self._replace(x=self.x * 2)


def test_a_record_is_a_namedtuple_with_its_fields_defaults_docstring_and_methods() -> None:
    point = Point(2)
    assert point == (2, 0.5) and isinstance(point, tuple)
    assert Point._fields == ("x", "y") and Point._field_defaults == {"y": 0.5}
    assert Point.__match_args__ == ("x", "y")
    assert point.doubled() == Point(4, 0.5) and point._asdict() == {"x": 2, "y": 0.5}
    assert repr(Point(1, y=2.0)) == "Point(x=1, y=2.0)"
    assert Point.__doc__ == "A point." and Point.__module__ == __name__
    assert Point.__annotations__ == {"x": "int", "y": "float"}  # kept as written, not compiled


def test_a_record_pickles_by_reference() -> None:
    assert pickle.loads(pickle.dumps(Point(3, 1.5))) == Point(3, 1.5)
    tuning = PollTuning(share=0.1)
    assert pickle.loads(pickle.dumps(tuning)) == tuning


def test_a_field_without_a_default_after_one_with_a_default_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(Record):
            x: int = 1
            y: int  # type: ignore[misc]  # mypy refuses it too


def test_the_tuple_machinery_cannot_be_overridden() -> None:
    with pytest.raises(AttributeError, match="_replace"):

        class Bad(Record):
            x: int

            def _replace(self) -> None: ...  # type: ignore[misc]  # mypy refuses it too


def test_a_record_inherits_from_record_only() -> None:
    with pytest.raises(TypeError, match="only inherit from Record"):

        class Bad(Record, int):  # type: ignore[misc]
            x: int
