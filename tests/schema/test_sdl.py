"""schema.graphql at the repository root is what the code serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gpugo.schema import build_schema, export_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_sdl_matches_the_code():
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == build_schema().as_str() + "\n", (
        "schema.graphql is stale: run `gpugo export-schema` and commit the result"
    )


def test_the_sdl_does_not_depend_on_the_explorer_setting(settings):
    on = build_schema(settings.replace(graphql_explorer=True)).as_str()
    off = build_schema(settings.replace(graphql_explorer=False)).as_str()
    assert on == off


def test_export_sdl_writes_the_file(tmp_path):
    path = tmp_path / "out.graphql"
    export_sdl(str(path))
    assert path.read_text(encoding="utf-8") == build_schema().as_str() + "\n"


def test_the_cli_command_exports(tmp_path):
    path = tmp_path / "cli.graphql"
    result = subprocess.run(
        [sys.executable, "-m", "gpugo", "export-schema", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "type Query" in path.read_text(encoding="utf-8")
