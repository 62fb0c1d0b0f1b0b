"""Reading batch input files: every bad file is one typed input error naming the file and the line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from comet_replicate import BatchInputError, InputValidationError
from comet_replicate._batch import MAX_NESTING, BatchItem, parse_jsonl, read_jsonl, validate_items

from .conftest import SCHNELL


def test_lines_are_numbered_as_an_editor_numbers_them(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'\xef\xbb\xbf{"input": {"prompt": "a"}}\r\n\n  \n{"prompt": "b\xe2\x80\xa8c"}\n{"prompt": "d"}'
    )
    assert read_jsonl(source) == [(1, {"prompt": "a"}), (4, {"prompt": "b\u2028c"}), (5, {"prompt": "d"})]


def test_random_bytes_are_an_input_error_naming_the_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "noise.jsonl"
    source.write_bytes(b'{"prompt": "ok"}\n' + bytes(range(128, 256)) + os.urandom(4096))
    with pytest.raises(BatchInputError) as caught:
        read_jsonl(source)
    assert isinstance(caught.value, InputValidationError)
    assert str(source) in str(caught.value) and "line 2" in str(caught.value)
    assert "UTF-8" in str(caught.value)
    assert caught.value.line == 2 and caught.value.source == str(source)


def test_a_line_nested_100000_deep_is_an_input_error_not_a_recursion_error() -> None:
    data = b'{"prompt": "ok"}\n' + b"[" * 100_000 + b"\n"
    with pytest.raises(BatchInputError, match=r"deep.jsonl line 2 nests arrays/objects 100000 deep"):
        parse_jsonl(data, "deep.jsonl")


def test_nesting_just_under_the_limit_reaches_the_json_parser() -> None:
    inner = MAX_NESTING - 1  # the object itself is one level
    line = '{"prompt": "x", "v": ' + "[" * inner + "]" * inner + "}"
    assert parse_jsonl(line.encode(), "f")[0][1]["prompt"] == "x"
    with pytest.raises(BatchInputError, match="line 1"):
        parse_jsonl(("[" * (MAX_NESTING + 1)).encode(), "f")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"prompt": "' + "[" * 5000 + '\\"{"}'
    assert parse_jsonl(text.encode(), "f") == [(1, {"prompt": "[" * 5000 + '"{'})]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"prompt": broken}\n', "line 1 is not valid JSON"),
        (b'{"prompt": "ok"}\n[1, 2]\n', "line 2 must be a JSON object, not list"),
        (b"\n\n", "holds no input lines"),
        (b'"just a string"', "line 1 must be a JSON object, not str"),
    ],
)
def test_each_malformed_file_names_what_is_wrong(content: bytes, expected: str) -> None:
    with pytest.raises(BatchInputError, match=expected):
        parse_jsonl(content, "in.jsonl")


def test_an_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match="cannot read"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_schema_errors_of_every_line_are_listed_in_one_error() -> None:
    items = [
        BatchItem(1, SCHNELL, {"prompt": "ok"}),
        BatchItem(2, SCHNELL, {"prompt": "x", "num_outputs": 9}),
        BatchItem(3, SCHNELL, {"prompt": "y", "colour": 1}),
    ]
    with pytest.raises(BatchInputError) as caught:
        validate_items(items, "in.jsonl")
    message = str(caught.value)
    assert "2 invalid input line(s)" in message
    assert "in.jsonl line 2" in message and "num_outputs" in message
    assert "in.jsonl line 3" in message and "colour" in message
    assert "line 1" not in message


def test_a_malformed_model_is_refused_before_any_request() -> None:
    with pytest.raises(InputValidationError, match="owner/name"):
        validate_items([BatchItem(1, "not a model", {"prompt": "x"})], "in.jsonl")
