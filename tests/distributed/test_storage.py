"""Inputs and outputs anywhere fsspec reaches: S3 (moto) and file:// URLs; one object per output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from comet_replicate._batch.remote import (
    RemoteOutputs,
    StorageError,
    display_location,
    read_source,
    source_name,
)

from tests.distributed._servers import MotoServer


def test_importing_the_package_and_the_batch_engine_loads_neither_fsspec_nor_psycopg() -> None:
    code = (
        "import sys, comet_replicate, comet_replicate._batch, comet_replicate._batch.remote;"
        "heavy = ('fsspec', 's3fs', 'psycopg', 'botocore');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_input_is_read_from_s3_with_credentials_from_the_environment(
    moto: MotoServer, bucket: str, s3_env: dict[str, str]
) -> None:
    import s3fs

    s3fs.S3FileSystem(skip_instance_cache=True).pipe_file(f"{bucket}/in/prompts.jsonl", b'{"prompt": "x"}\n')
    assert read_source(f"s3://{bucket}/in/prompts.jsonl") == b'{"prompt": "x"}\n'
    assert source_name(f"s3://{bucket}/in/prompts.jsonl") == "prompts.jsonl"


def test_a_missing_input_object_is_named(moto: MotoServer, bucket: str, s3_env: dict[str, str]) -> None:
    with pytest.raises(StorageError, match=f"cannot read s3://{bucket}/nope.jsonl: does not exist"):
        read_source(f"s3://{bucket}/nope.jsonl")


def test_outputs_go_to_an_s3_prefix_as_one_object_each(
    moto: MotoServer, bucket: str, s3_env: dict[str, str]
) -> None:
    store = RemoteOutputs(f"s3://{bucket}/run-1")
    store.check()
    assert store.put("line00001-a.png", b"\x89PNG" + b"0" * 100) == f"s3://{bucket}/run-1/line00001-a.png"
    store.put("line00001-a.png", b"\x89PNG" + b"0" * 100)  # a second writer of the same line: same object
    assert moto.objects(bucket) == {"run-1/line00001-a.png": 104}


def test_a_missing_bucket_is_refused_before_anything_is_written(
    moto: MotoServer, s3_env: dict[str, str]
) -> None:
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-x' does not exist") as caught:
        RemoteOutputs("s3://no-such-bucket-x/out").check()
    assert caught.value.usage


def test_an_unknown_scheme_is_named_with_the_known_ones() -> None:
    with pytest.raises(
        StorageError, match=r"unknown URL scheme 'nosuch://' \(use a local path or one of file://, s3://"
    ):
        RemoteOutputs("nosuch://bucket/out")


def test_file_urls_are_read_as_local_files(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("{}\n")
    assert read_source(f"file://{tmp_path}/in.jsonl") == b"{}\n"
    assert read_source(tmp_path / "in.jsonl") == b"{}\n"
    with pytest.raises(StorageError, match="does not exist"):
        read_source(tmp_path / "missing.jsonl")


def test_passwords_in_urls_are_never_shown() -> None:
    assert display_location("https://user:s3cret@host:8080/p/x.jsonl") == "https://host:8080/p/x.jsonl"
    assert display_location("/plain/path") == "/plain/path"
