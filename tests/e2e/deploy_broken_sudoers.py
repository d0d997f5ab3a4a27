"""A deploy that tries to install a sudoers rule visudo rejects (test_a_broken_sudoers_rule_never_lands)."""

from tasks.hub import install_sudoers_rule

install_sudoers_rule("jupyter ALL=(ALL NOPASSWD: /bin/true\n")
