"""Items and shards: identity is the work itself, so edits of the file never move a line between shards."""

from __future__ import annotations

import pytest
from comet_replicate import BatchInputError, BatchItem
from comet_replicate._batch import Shard, input_hash, items_from, parse_shard

from .conftest import SCHNELL


def _items(prompts: list[str]) -> list[BatchItem]:
    return [BatchItem(n, SCHNELL, {"prompt": p}) for n, p in enumerate(prompts, start=1)]


def test_every_item_falls_in_exactly_one_shard_and_shards_are_balanced() -> None:
    items = _items([f"boat {n}" for n in range(400)])
    shards = [Shard(k, 4) for k in range(1, 5)]
    owners = [[shard for shard in shards if shard.holds(item)] for item in items]
    assert all(len(found) == 1 for found in owners)
    sizes = [sum(1 for found in owners if found[0] == shard) for shard in shards]
    assert min(sizes) > 60, sizes  # 100 expected each; a hash by position would also pass, see below


def test_inserting_lines_above_moves_no_line_to_another_shard() -> None:
    before = _items([f"boat {n}" for n in range(100)])
    after = _items(["a new first line", "and another", *[f"boat {n}" for n in range(100)]])
    shard_of = {
        item.input["prompt"]: next(k for k in range(1, 4) if Shard(k, 3).holds(item)) for item in before
    }
    for item in after[2:]:
        assert Shard(shard_of[item.input["prompt"]], 3).holds(item)
    assert [item.line for item in after[2:]] == [item.line + 2 for item in before]


def test_the_shard_depends_on_model_and_input_not_on_key_order() -> None:
    one = BatchItem(1, SCHNELL, {"prompt": "x", "seed": 1})
    other = BatchItem(7, SCHNELL, {"seed": 1, "prompt": "x"})
    assert one.digest == other.digest == input_hash(SCHNELL, {"prompt": "x", "seed": 1})
    assert all(Shard(k, 5).holds(one) == Shard(k, 5).holds(other) for k in range(1, 6))


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "2", "a/b", "2/4/8", ""])
def test_a_bad_shard_is_refused_naming_the_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"K/N|shard"):
        parse_shard(text)


def test_shards_parse_from_text_and_pairs() -> None:
    assert parse_shard("2/4") == parse_shard((2, 4)) == Shard(2, 4)
    assert parse_shard(None) is None
    assert str(Shard(3, 8)) == "3/8"


def test_library_inputs_take_mappings_pairs_and_items() -> None:
    items = items_from(
        [{"prompt": "a"}, ("owner/other", {"prompt": "b"}), BatchItem(9, SCHNELL, {"p": 1})], SCHNELL
    )
    assert [(item.line, item.model) for item in items] == [(1, SCHNELL), (2, "owner/other"), (9, SCHNELL)]


def test_library_inputs_without_a_model_or_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(BatchInputError, match="item 1: no model given"):
        items_from([{"prompt": "a"}], None)
    with pytest.raises(BatchInputError, match="item 2 must be a mapping of input fields, not str"):
        items_from([{"prompt": "a"}, "b"], SCHNELL)
    with pytest.raises(BatchInputError, match="share one line number"):
        items_from([BatchItem(1, SCHNELL, {}), BatchItem(1, SCHNELL, {"x": 1})], None)
