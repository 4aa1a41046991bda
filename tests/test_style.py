import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff(command):
    ruff = shutil.which("ruff")
    assert ruff, "ruff is installed with the test extras"
    result = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_is_a_short_front_door_whose_links_land():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120
    first = [line.strip() for line in readme.splitlines() if line.startswith("    ")][:2]
    assert first[0].startswith("bash scripts/install.sh && ")  # set up, then the main job
    assert first[1].startswith("bash scripts/install_tests.sh && ")  # then the tests
    import re

    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_no_file_points_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = [
        name
        for name in tracked
        if (ROOT / name).is_file()
        and not name.endswith((".png", ".npz", ".h5"))
        and "../" + "shared" in (ROOT / name).read_text(errors="ignore")  # (not this line)
    ]
    assert outside == []
