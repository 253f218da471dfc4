# -*- test-case-name: tests.policies.test_registry -*-
"""
Temporary third-party plugin folders (SOMEDIR/penbal/plugins/NAME.py) for discovery tests.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import penbal.plugins

_serial = itertools.count()

GOOD = '''
from twisted.plugin import IPlugin
from zope.interface import implementer

from penbal.interfaces import IPolicyPlugin
from penbal.policies.plugin import PolicyPlugin
from penbal.policies.prio import PrioPolicy

{attr} = PolicyPlugin({name!r}, "a test policy", lambda context: PrioPolicy())
'''


def plugin_folder(case: SynchronousTestCase, files: dict[str, str]) -> Path:
    """Write C{files} (module stem -> source) to a new C{penbal/plugins} folder and make
    C{penbal.plugins} search it until the test ends.  Module stems get a unique suffix.
    """
    root = Path(case.mktemp())
    folder = root / "penbal" / "plugins"
    folder.mkdir(parents=True)
    suffix = f"_{next(_serial)}"
    names = []
    for stem, source in files.items():
        name = stem + suffix
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(f"penbal.plugins.{name}")
    path = penbal.plugins.__path__
    path.append(str(folder))

    def restore() -> None:
        path.remove(str(folder))
        for name in names:
            sys.modules.pop(name, None)

    case.addCleanup(restore)
    return folder


def good_plugin(name: str, attr: str = "plugin") -> str:
    """The source of a working third-party policy plugin named C{name}."""
    return GOOD.format(name=name, attr=attr)
