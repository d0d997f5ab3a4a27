"""The deploy's own facts parse what the commands print on the targets."""

from tasks.facts import UfwStatus

UFW_ACTIVE = """Status: active

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW       Anywhere
443/tcp                    ALLOW       Anywhere
22/tcp (v6)                ALLOW       Anywhere (v6)
443/tcp (v6)               ALLOW       Anywhere (v6)"""


def test_ufw_status_active_with_rules():
    assert UfwStatus().process(UFW_ACTIVE.splitlines()) == {"active": True, "allowed": {"22/tcp", "443/tcp"}}


def test_ufw_status_inactive_and_absent():
    assert UfwStatus().process(["Status: inactive"]) == {"active": False, "allowed": set()}
    assert UfwStatus().process([]) is None
