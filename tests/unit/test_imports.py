"""Every module of the deploy imports: a name one of them takes from another exists there."""

import importlib
import pkgutil

import pytest

import tasks


@pytest.mark.parametrize("name", sorted(m.name for m in pkgutil.walk_packages(tasks.__path__, "tasks.")))
def test_the_module_imports(name):
    importlib.import_module(name)
