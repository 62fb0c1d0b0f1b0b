"""The mutation harness itself: markers are found anywhere in the tree, changes stay on their line, and
a missing or duplicated marker is reported instead of silently skipping a mutation."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract_tests.mutation import (
    MUTATIONS,
    ROOT,
    Delete,
    Mutation,
    Replace,
    Target,
    locate,
    mutate,
    tracked_files,
)

MARK = "# mutation-" + "point"  # split so this file holds no marker of its own


def _tree(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return sorted(files)


def _mutation(marker: str, change: Delete | Replace) -> Mutation:
    return Mutation("m", "what", ("x",), marker=marker, change=change)


def test_a_marker_is_found_in_whichever_file_holds_it(tmp_path: Path) -> None:
    files = _tree(
        tmp_path,
        {
            "wrapper/comet_replicate/core/request.py": (
                f"x = 1\nheaders['Prefer'] = wait  {MARK}: send-prefer\n"
            ),
            "other.py": "y = 2\n",
        },
    )
    targets, problems = locate([_mutation("send-prefer", Delete())], files, tmp_path)
    assert problems == []
    assert targets["m"] == Target("wrapper/comet_replicate/core/request.py", 1)
    assert targets["m"].module == "comet_replicate.core.request"


@pytest.mark.parametrize("copies", [0, 2])
def test_a_missing_or_duplicated_marker_is_a_problem_not_a_skip(tmp_path: Path, copies: int) -> None:
    files = _tree(tmp_path, {f"f{i}.py": f"a = {i}  {MARK}: twice\n" for i in range(copies)} or {"f.py": ""})
    targets, problems = locate([_mutation("twice", Delete())], files, tmp_path)
    assert "m" not in targets
    assert len(problems) == 1 and f"found {copies} times" in problems[0]


def test_a_marker_must_end_the_line(tmp_path: Path) -> None:
    files = _tree(tmp_path, {"f.py": f'text = "{MARK}: inside-a-string"\n'})
    _, problems = locate([_mutation("inside-a-string", Delete())], files, tmp_path)
    assert problems


def test_delete_removes_only_the_marked_line(tmp_path: Path) -> None:
    text = f"a = 1\nb = 2  {MARK}: gone\nc = 3\n"
    files = _tree(tmp_path, {"f.py": text})
    m = _mutation("gone", Delete())
    targets, _ = locate([m], files, tmp_path)
    mutate(m, targets["m"], tmp_path)
    assert (tmp_path / "f.py").read_text() == "a = 1\nc = 3\n"


def test_delete_of_a_blocks_only_statement_leaves_pass(tmp_path: Path) -> None:
    text = f"if ready:\n    check(x)  {MARK}: only\nafter()\n"
    files = _tree(tmp_path, {"f.py": text})
    m = _mutation("only", Delete())
    targets, _ = locate([m], files, tmp_path)
    mutate(m, targets["m"], tmp_path)
    mutated = (tmp_path / "f.py").read_text()
    assert "check(x)" not in mutated and "    pass" in mutated
    compile(mutated, "f.py", "exec")


def test_delete_refuses_a_statement_spanning_lines(tmp_path: Path) -> None:
    text = f"call(  {MARK}: spans\n    1,\n)\n"
    files = _tree(tmp_path, {"f.py": text})
    m = _mutation("spans", Delete())
    targets, _ = locate([m], files, tmp_path)
    with pytest.raises(ValueError, match="spans lines"):
        mutate(m, targets["m"], tmp_path)


def test_replace_changes_one_token_on_the_line_and_keeps_the_marker(tmp_path: Path) -> None:
    text = f"RETRY = {{500, 524}}  {MARK}: retry\nOTHER = 524\n"
    files = _tree(tmp_path, {"f.py": text})
    m = _mutation("retry", Replace("524", "599"))
    targets, _ = locate([m], files, tmp_path)
    mutate(m, targets["m"], tmp_path)
    assert (tmp_path / "f.py").read_text() == f"RETRY = {{500, 599}}  {MARK}: retry\nOTHER = 524\n"


def test_replace_refuses_an_ambiguous_token(tmp_path: Path) -> None:
    files = _tree(tmp_path, {"f.py": f"x = (524, 524)  {MARK}: two\n"})
    m = _mutation("two", Replace("524", "599"))
    targets, _ = locate([m], files, tmp_path)
    with pytest.raises(ValueError, match="occurs 2 times"):
        mutate(m, targets["m"], tmp_path)


def test_a_yaml_line_is_deleted_whole(tmp_path: Path) -> None:
    text = f"props:\n  a: {{type: string}}\n  b: {{type: boolean}}  {MARK}: field\n"
    files = _tree(tmp_path, {"s.yaml": text})
    m = _mutation("field", Delete())
    targets, _ = locate([m], files, tmp_path)
    mutate(m, targets["m"], tmp_path)
    assert (tmp_path / "s.yaml").read_text() == "props:\n  a: {type: string}\n"


MINE = {"validate-input", "status-524", "spec-field-name", "input-schema-field"}


def test_this_branchs_markers_are_each_in_the_tree_once() -> None:
    chosen = [m for m in MUTATIONS if m.marker in MINE]
    assert {m.marker for m in chosen} == MINE
    targets, problems = locate(chosen, tracked_files(), ROOT)
    assert problems == []
    assert {targets[m.name].file for m in chosen} == {
        "wrapper/comet_replicate/_inputs.py",
        "wrapper/comet_replicate/_errors.py",
        "openapi.yaml",
    }


def test_every_marked_mutation_applies_cleanly_where_its_marker_exists(tmp_path: Path) -> None:
    files = tracked_files()
    for m in MUTATIONS:
        targets, problems = locate([m], files, ROOT)
        if problems:
            continue  # markers of other branches; the harness itself refuses to run without them
        target = targets[m.name]
        copy = tmp_path / m.name
        (copy / target.file).parent.mkdir(parents=True, exist_ok=True)
        (copy / target.file).write_bytes((ROOT / target.file).read_bytes())
        mutate(m, target, copy)
        assert (copy / target.file).read_bytes() != (ROOT / target.file).read_bytes(), m.name
