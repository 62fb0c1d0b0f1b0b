"""The output folder: exactly the expected files after any interruption, and no output overwrites another."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from comet_replicate import AsyncBatch, AsyncClient, BatchItem
from comet_replicate._batch import STAGING_DIR, OutputFolder, SQLiteJournal

from .conftest import SCHNELL, TOKEN, client_for, prompts, requests_of


class _FakeOutput:
    """Stands in for FileOutput: writes a named file, like a download of a URL ending in that name."""

    def __init__(self, name: str, body: bytes) -> None:
        self.name, self.body = name, body

    async def adownload(self, sink: IO[bytes]) -> str | None:
        sink.write(self.body)
        return None  # no content type: the name comes from the URL alone

    def file_name(self, content_type: str | None) -> str:
        return self.name


async def test_two_outputs_of_one_prediction_with_the_same_name_are_both_kept(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path)
    paths = await folder.save(3, [_FakeOutput("p1-output.png", b"a"), _FakeOutput("p1-output.png", b"b")])  # type: ignore[list-item]
    assert [Path(p).name for p in paths] == ["line00003-p1-output.png", "line00003-1-p1-output.png"]
    assert [Path(p).read_bytes() for p in paths] == [b"a", b"b"]
    folder.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "line00003-1-p1-output.png",
        "line00003-p1-output.png",
    ]


def test_clearing_a_line_leaves_the_downloads_of_other_lines_alone(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path)
    staging = tmp_path / STAGING_DIR
    staging.mkdir()
    for name in ("line00001.aaaaaaaaaaaa.part", "line00010.bbbbbbbbbbbb.part", "line00011.cccccccccccc.part"):
        (staging / name).write_bytes(b"part")
    folder.clear_line(1)
    assert sorted(p.name for p in staging.iterdir()) == [
        "line00010.bbbbbbbbbbbb.part",
        "line00011.cccccccccccc.part",
    ]
    folder.finish()  # another line still downloads: the staging folder stays
    assert staging.is_dir()


async def test_a_resume_removes_what_an_interrupted_download_left_behind(
    emulator: Any, tmp_path: Path
) -> None:
    # As a kill -9 mid-download leaves it: the id committed, a partial file in the line's staging folder.
    journal, out = tmp_path / "j.sqlite", tmp_path / "out"
    [value] = prompts(1)
    async with AsyncClient(TOKEN, base_url=emulator.cometapi_base_url) as client:
        prediction = await client.predictions.create(SCHNELL, value)
    item_row = (1, BatchItem(1, SCHNELL, value).digest)
    with SQLiteJournal(journal, "batch") as store:
        store.mark_creating(*item_row, SCHNELL)
        store.mark_created(*item_row, prediction.id, "starting")
    staging = out / STAGING_DIR / "line00001"  # as earlier versions staged a line's downloads
    staging.mkdir(parents=True)
    (staging / ".comet-abc123.part").write_bytes(b"half an image")
    (out / STAGING_DIR / "line00001.0123456789ab.part").write_bytes(b"half an image")  # as this one does

    async with client_for(emulator) as client:
        report = await AsyncBatch(client, prompts(1), model=SCHNELL, journal=journal, out=out)
    assert report.ok and report.plan.resume == 1
    assert [p.name for p in out.iterdir()] == [Path(report.results[0].files[0]).name]
    assert requests_of(emulator, "create") == 1
