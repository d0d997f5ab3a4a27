"""python -m tests.harness demo up|down|info, or images SUITE... (see tests/harness/demo.py)."""

from tests.harness.demo import main

main()
