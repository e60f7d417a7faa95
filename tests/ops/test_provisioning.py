"""`make test` provisions the programs the suite drives, and CI provisions them the same way (issue: fresh machine).

The browser tests find Chromium or fail with one line naming the command to run; the provisioning script says
what to install when it cannot install it itself.
"""

import re
import subprocess
from pathlib import Path

import pytest

from tests.browser.conftest import NO_CHROMIUM, chromium_executable

ROOT = Path(__file__).resolve().parents[2]


def _prerequisites(makefile: str, target: str) -> list[str]:
    match = re.search(rf"^{target}:([^#\n]*)", makefile, re.MULTILINE)
    assert match is not None, f"no {target} target"
    return match.group(1).split()


def test_make_test_and_ci_share_one_provisioning_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "tools" in _prerequisites(makefile, "test")
    assert "scripts/provision-tools" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make tools$", ci, re.MULTILINE)
    # CI must not keep a second, drifting list of packages.
    assert "apt-get install" not in ci


def test_chromium_prefers_debian_then_playwright(tmp_path: Path) -> None:
    debian, managed = tmp_path / "chromium", tmp_path / "chrome"
    managed.write_text("#!/bin/sh\n")
    managed.chmod(0o755)
    assert chromium_executable(managed, preferred=debian) == managed
    debian.write_text("#!/bin/sh\n")
    debian.chmod(0o755)
    assert chromium_executable(managed, preferred=debian) == debian


def test_no_chromium_fails_with_one_line_saying_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        chromium_executable(tmp_path / "none", preferred=tmp_path / "absent")
    assert str(failed.value) == NO_CHROMIUM
    assert "\n" not in NO_CHROMIUM
    assert "make tools" in NO_CHROMIUM
    assert "playwright install chromium" in NO_CHROMIUM


def test_provisioning_without_root_names_each_missing_tool(tmp_path: Path) -> None:
    """A laptop without root, apt, wrk, compose, Node or any Chromium: one line per tool, non-zero exit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_id = bin_dir / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    result = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "provision-tools")],
        env={
            "PATH": str(bin_dir),
            "PYTHON": str(tmp_path / "no-python"),
            "OAUTH_TEST_CHROMIUM": str(tmp_path / "no-chromium"),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4, result.stderr
    assert "no Chromium" in lines[0]
    assert "apt-get install chromium" in lines[0]
    assert "playwright install chromium" in lines[0]
    assert "apt-get install wrk" in lines[1]
    assert "apt-get install docker-compose" in lines[2]
    assert "no Node.js" in lines[3]
    assert "apt-get install nodejs npm" in lines[3]


def test_provisioning_after_make_tools_is_a_quiet_no_op() -> None:
    """``make test`` ran the script before pytest: a second run finds everything and prints nothing."""
    result = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "provision-tools")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
