"""The README's "Storing storyboards" example runs as written and prints what it promises."""

import re
import subprocess
import sys
from pathlib import Path

from tests.support.cli import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def storing_example() -> str:
    section = README.split("## Storing storyboards", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_storing_storyboards_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", storing_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    asset_line, speaker_line = result.stdout.splitlines()
    assert re.fullmatch(
        r"\[SceneKey\(project_id=UUID\('[0-9a-f-]{36}'\), scene_index=0\)\]", asset_line
    )
    assert speaker_line == asset_line
    assert (tmp_path / "vidpipe.db").exists()
