"""The dashboard's assets ship inside the package: a non-editable wheel carries them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gpugo.web import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]


def _setuptools_ok() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.mark.skipif(not _setuptools_ok(), reason="setuptools>=77 (the dev extra) builds the wheel")
def test_a_wheel_built_without_node_holds_every_dashboard_file(tmp_path: Path):
    # Build from a copy, so the checkout gets no build/ or egg-info of its own.
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "gpugo", source / "gpugo", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = out.glob("gpugo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"gpugo/web/static/{p.relative_to(STATIC_DIR).as_posix()}"
        for p in STATIC_DIR.rglob("*")
        if p.is_file()
    }
    assert {"gpugo/web/static/index.html", "gpugo/web/static/js/main.js"} <= expected
    assert expected - names == set()


def test_ci_has_the_browser():
    """CI installs Chromium (.ci/run); there the browser tests must run, not skip."""
    from tests.browser.support import _skip_reason

    if os.environ.get("CI") == "true":
        assert _skip_reason() is None
