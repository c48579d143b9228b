"""`gpugo releases validate FILE`: a release manifest checked as the server loads it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef" * 4


def manifest(**artifact_changes: Any) -> dict[str, Any]:
    artifact = {
        "cpuArch": "amd64",
        "os": "linux",
        "url": "https://mirror.example.com/libaccelerator_nvidia.so",
        "sha256": SHA,
        "metadata": {"type": "vgpu-library", "size": "1024"},
        **artifact_changes,
    }
    return {
        "releases": [
            {
                "id": "accelerator-nvidia-1.0.0",
                "vendor": {"slug": "nvidia", "name": "NVIDIA"},
                "version": "1.0.0",
                "releaseDate": "2026-01-15T00:00:00Z",
                "artifacts": [artifact],
            }
        ]
    }


def validate(path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    result = run_cli("releases", "validate", str(path), env=env)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"GPUGO_DATA_DIR": str(tmp_path)}


def test_a_valid_manifest(tmp_path, env):
    path = tmp_path / "releases.json"
    path.write_text(json.dumps(manifest()), encoding="utf-8")
    code, out, err = validate(path, env)
    assert (code, err) == (0, "")
    assert out.strip() == f"{path}: 1 releases, 1 artifacts"


def test_the_example_of_the_docs_is_valid_and_warns_of_nothing(tmp_path, env):
    docs = (ROOT / "docs" / "agents.md").read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", docs, re.DOTALL)
    assert example is not None
    path = tmp_path / "example.json"
    path.write_text(example.group(1), encoding="utf-8")
    code, out, err = validate(path, env)
    assert (code, err) == (0, "")
    assert "2 releases, 2 artifacts" in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{", "not valid JSON"),
        ('{"releases": {}}', "releases: Must be a list."),
        # The agent decodes metadata as strings: a number would break its decode.
        (
            json.dumps(manifest(metadata={"type": "vgpu-library", "size": 1024})),
            "releases[0].artifacts[0].metadata.size: Must be text.",
        ),
        (json.dumps(manifest(url="ftp://mirror/x.so")), "must be an http(s) URL"),
        (json.dumps(manifest(url="https://mirror.example.com/")), "must end in a file name"),
        (json.dumps(manifest(sha256="abc")), "64 hexadecimal digits"),
        (
            json.dumps({"releases": manifest()["releases"] * 2}),
            "release id 'accelerator-nvidia-1.0.0' appears twice",
        ),
        (
            json.dumps({"releases": [{**manifest()["releases"][0], "releaseDate": "yesterday"}]}),
            "releases[0].releaseDate",
        ),
    ],
)
def test_an_invalid_manifest_exits_2_with_one_line(tmp_path, env, content, says):
    path = tmp_path / "releases.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = validate(path, env)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"gpugo: {path}: "), err
    assert says in err
    assert "Traceback" not in err


def test_a_missing_or_oversized_file_exits_2(tmp_path, env):
    code, _, err = validate(tmp_path / "absent.json", env)
    assert code == 2 and "cannot read it" in err
    path = tmp_path / "big.json"
    path.write_text(json.dumps(manifest()) + " " * 2048, encoding="utf-8")
    code, _, err = validate(path, {**env, "GPUGO_RELEASES_MAX_BYTES": "1024"})
    assert code == 2 and "larger than 1024 bytes" in err


def test_what_the_agent_would_not_use_is_a_warning(tmp_path, env):
    path = tmp_path / "releases.json"
    path.write_text(
        json.dumps(manifest(sha256="", os="solaris", metadata={"size": "1 MB"})), encoding="utf-8"
    )
    code, out, err = validate(path, env)
    assert code == 0
    assert "1 releases, 1 artifacts" in out
    warnings = err.strip().splitlines()
    assert len(warnings) == 4
    assert all(
        w.startswith("gpugo: warning: releases[0].artifacts[0] (libaccelerator_nvidia.so)")
        for w in warnings
    )
    assert "no metadata.type" in err and "no sha256" in err
    assert "metadata.size '1 MB'" in err and "solaris/amd64" in err


def test_bad_arguments_exit_2(env):
    assert run_cli("releases", env=env).returncode == 2
    assert run_cli("releases", "validate", env=env).returncode == 2


def test_serve_refuses_to_start_with_an_invalid_manifest(tmp_path, database_url):
    path = tmp_path / "releases.json"
    path.write_text('{"releases": [{"id": "a"}]}', encoding="utf-8")
    env = {
        "GPUGO_DATABASE_URL": database_url,
        "GPUGO_DATA_DIR": str(tmp_path),
        "GPUGO_PORT": "1",  # never bound: the manifest is checked first
        "GPUGO_RELEASES_FILE": str(path),
    }
    result = run_cli("serve", env=env)
    assert result.returncode == 2
    # Start-up log lines (the open-file limit) may come first; then the error, no traceback.
    errors = [line for line in result.stderr.splitlines() if line.startswith("gpugo: ")]
    assert errors, result.stderr
    assert errors[0].startswith("gpugo: configuration error: GPUGO_RELEASES_FILE: ")
    assert "releases[0].vendor: This field is required." in result.stderr
    assert "Traceback" not in result.stderr
