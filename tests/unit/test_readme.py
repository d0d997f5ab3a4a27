"""The README's settings table and the settings model name the same settings."""

import re

from tasks.settings import PREFIX, REPO, Settings


def readme_settings() -> set[str]:
    text = (REPO / "README.md").read_text()
    table = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(jh_\w+)`", row.split("|")[1])}


def test_every_setting_is_in_the_readme_and_nothing_else():
    assert readme_settings() == {PREFIX + name for name in Settings.model_fields}
