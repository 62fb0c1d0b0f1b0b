"""Files the CLI reads and writes around a paid prediction (issue 13 items 6 and 7).

A bad `--input-file` (random bytes, deep nesting, a device, a directory) is an input error: exit 2,
one line naming the file and the line, nothing sent. An `--out` that cannot hold the outputs is
refused before the create. When saving fails after the prediction succeeded, the id still reaches
the user (stderr, and the JSON document with the error) and the exit code is 3, never 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from comet_replicate._cli._errors import ExitCode
from comet_replicate._cli._inputs import MAX_INPUT_FILE_BYTES, read_input_file

from tests.reliability._support import RawServer, http_head

from .conftest import SCHNELL, point_at, requests_of


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    random_bytes = tmp_path / "random.json"
    random_bytes.write_bytes(b'{"prompt": "ok",\n' + bytes(range(128, 256)) * 20)
    deep = tmp_path / "deep.json"
    deep.write_text('{"prompt": "a",\n "x": ' + "[" * 100_000 + "\n")
    broken = tmp_path / "broken.json"
    broken.write_text('{"prompt": "a",\n "seed": 1,\n "x": [1 2]}\n')
    directory = tmp_path / "folder"
    directory.mkdir()
    return {
        "random bytes": (random_bytes, "not UTF-8 text (line 2"),
        "100,000 [": (deep, "nests arrays or objects too deeply to read (line 2"),
        "broken JSON": (broken, "not valid JSON (line 3, column"),
        "directory": (directory, "is a directory"),
        "device": (Path("/dev/zero"), "is a device"),
    }


@pytest.mark.parametrize("case", ["random bytes", "100,000 [", "broken JSON", "directory", "device"])
def test_bad_input_file_exits_2_with_one_line_naming_the_file_and_line(cli, emulator, tmp_path, case) -> None:
    path, expected = _bad_files(tmp_path)[case]
    result = cli("run", SCHNELL, "--input-file", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert f"--input-file {path}" in result.stderr and expected in result.stderr
    assert requests_of(emulator, "create") == 0


def test_an_endless_input_file_stops_at_the_cap(tmp_path: Path) -> None:
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the writer: more than the cap, then exit
        try:
            with open(fifo, "wb") as sink:
                chunk = b" " * 1_048_576
                for _ in range(MAX_INPUT_FILE_BYTES // len(chunk) + 2):
                    sink.write(chunk)
        finally:
            os._exit(0)
    try:
        with pytest.raises(Exception, match="larger than"):
            read_input_file(fifo)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_an_input_file_with_a_bom_and_the_input_envelope_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"input": {"prompt": "a boat"}}).encode())
    assert read_input_file(path) == {"prompt": "a boat"}


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_out_that_cannot_be_a_directory_is_refused_before_the_create(cli, emulator, tmp_path, where) -> None:
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"not a directory")
    out = existing if where == "file" else existing / "sub"
    result = cli("run", SCHNELL, "--prompt", "a boat", "--out", str(out))
    assert result.exit_code == ExitCode.USAGE
    assert "is a file, not a directory" in result.stderr and str(existing) in result.stderr
    assert requests_of(emulator, "create") == 0


def test_wait_checks_out_before_polling(cli, emulator, tmp_path) -> None:
    existing = tmp_path / "taken"
    existing.write_text("x")
    result = cli("wait", "some-id", "--out", str(existing))
    assert result.exit_code == ExitCode.USAGE
    assert requests_of(emulator, "get") == 0


@pytest.fixture
def files_gone():  # type: ignore[no-untyped-def]
    """A file host whose every download answers 410 Gone (the outputs cannot be saved)."""

    async def gone(request, writer) -> None:  # type: ignore[no-untyped-def]
        writer.write(http_head("410 Gone", {"Content-Length": "0"}))

    with RawServer({"*": gone}) as server:
        yield server


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_saving_that_fails_after_success_prints_the_id_and_exits_3(
    cli, serve_emulator, monkeypatch, tmp_path, files_gone, as_json: bool
) -> None:
    server = serve_emulator(speed=50, public_base_url=files_gone.base_url)
    point_at(monkeypatch, server)
    args = ["run", SCHNELL, "--prompt", "a boat", "--wait", "30", "--out", str(tmp_path / "out")]
    result = cli(*args, *(["--json"] if as_json else []))
    assert result.exit_code == ExitCode.API, (result.stdout, result.stderr)
    (prediction_id,) = server.stats()["prediction_ids"]
    assert f"prediction {prediction_id} succeeded but saving the outputs failed" in result.stderr
    assert f"comet-replicate wait {prediction_id}" in result.stderr
    assert any(r.target.startswith("/files/") for r in files_gone.requests)  # the download was tried
    if as_json:
        document = json.loads(result.stdout)
        assert document["id"] == prediction_id and document["status"] == "succeeded"
        assert document["exit_code"] == ExitCode.API and "saving the outputs failed" in document["error"]
        assert document["outputs"] and all("path" not in row for row in document["outputs"])
    else:
        assert result.stdout == ""


def _noise_png(path: Path, side: int = 400) -> Path:
    from PIL import Image

    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path)
    return path


def test_a_large_local_image_needs_max_data_url_bytes_which_the_cli_can_raise(
    cli, emulator, tmp_path
) -> None:
    image = _noise_png(tmp_path / "big.png")
    args = ["run", "black-forest-labs/flux-dev", "-p", "like this", "-i", f"image={image}"]
    refused = cli(*args, "--out", str(tmp_path / "a"))
    assert refused.exit_code == ExitCode.USAGE and "input.image" in refused.stderr
    assert requests_of(emulator, "create") == 0
    accepted = cli(*args, "--max-data-url-bytes", str(2 * image.stat().st_size), "--out", str(tmp_path / "b"))
    assert accepted.exit_code == 0, accepted.stderr
    assert requests_of(emulator, "create") == 1
    assert len(list((tmp_path / "b").iterdir())) == 1
