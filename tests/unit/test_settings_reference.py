"""docs/settings.md is the reference tasks/settings/reference.py writes from the settings model."""

from tasks.settings import PREFIX, REPO, Settings
from tasks.settings.reference import COMMAND, DOC, render


def test_the_reference_is_what_the_model_says():
    assert DOC.read_text() == render(), f"{DOC.relative_to(REPO)} is stale: run `{COMMAND}` and commit it"


def test_every_setting_has_an_entry():
    text = render()
    assert [name for name in Settings.model_fields if f"\n### `{PREFIX}{name}`\n" not in text] == []


def test_the_readme_points_to_the_reference():
    readme = (REPO / "README.md").read_text()
    assert "docs/settings.md" in readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
