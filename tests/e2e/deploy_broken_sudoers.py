"""A deploy that tries to install a sudoers rule visudo rejects (test_a_broken_sudoers_rule_never_lands)."""

from tasks.hub import install_sudoers_rule
from tasks.settings import current_settings

install_sudoers_rule(current_settings(), "jupyter ALL=(ALL NOPASSWD: /bin/true\n")
