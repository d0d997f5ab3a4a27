"""Controller paths the deploy writes secrets to or reads code from: nobody else may change them."""

import os

import pytest

from tasks.settings.controller import unsafe


@pytest.fixture
def folder(tmp_path):
    tmp_path.chmod(0o755)
    return tmp_path


def test_a_folder_of_one_s_own_is_safe_even_below_a_sticky_one(folder):
    assert unsafe(folder / "backups") is None  # still to be made, in a folder of one's own
    (folder / "backups").mkdir()
    assert unsafe(folder / "backups") is None


def test_a_folder_others_may_write_is_not(folder):
    (folder / "shared").mkdir()
    (folder / "shared").chmod(0o775)
    assert "may be changed by others (mode 775)" in unsafe(folder / "shared" / "backups")


def test_a_path_still_to_be_made_in_a_sticky_folder_is_not(folder):
    (folder / "tmp").mkdir()
    (folder / "tmp").chmod(0o1777)
    assert "still to be made in" in unsafe(folder / "tmp" / "backups")
    (folder / "tmp" / "mine").mkdir(mode=0o700)
    assert unsafe(folder / "tmp" / "mine" / "backups") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user's needs root")
def test_another_user_s_folder_is_not(folder):
    (folder / "theirs").mkdir()
    os.chown(folder / "theirs", 65534, 65534)
    assert "belongs to another user (uid 65534)" in unsafe(folder / "theirs" / "backups")


def test_a_link_is_judged_by_where_it_leads_and_the_folders_on_the_way(folder):
    (folder / "open").mkdir()
    (folder / "open").chmod(0o777)
    (folder / "link").symlink_to(folder / "open")
    assert "may be changed by others" in unsafe(folder / "link" / "backups")
