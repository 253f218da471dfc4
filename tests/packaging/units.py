# -*- test-case-name: tests.packaging.test_units -*-
"""
penbal's systemd units as files: where they are, read as sections of settings, and
C{systemd-analyze verify} run on instances of them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

UNITS = Path(__file__).resolve().parent.parent.parent / "packaging" / "systemd"
SERVICE = UNITS / "penbal@.service"
SOCKET = UNITS / "penbal@.socket"


def settings(unit: Path) -> dict[str, list[str]]:
    """C{SECTION.Key} -> its values in order (a unit may repeat a key)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


def verify(instance: str, penbal: str | None = None, man: bool = False,
           service: Path = SERVICE) -> subprocess.CompletedProcess[str]:
    """C{systemd-analyze verify} on C{penbal@INSTANCE.service} and C{.socket}, copied to a
    temporary directory; C{penbal} replaces C{/usr/bin/penbal} (the test's own when the
    package is not installed)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        raise AssertionError("systemd-analyze is missing: run scripts/install-system-packages")
    directory = Path(tempfile.mkdtemp(prefix="penbal-units-"))
    try:
        text = service.read_text()
        if penbal is not None:
            text = text.replace("/usr/bin/penbal", penbal)
        (directory / "penbal@.service").write_text(text)
        shutil.copy(SOCKET, directory / "penbal@.socket")
        units = []
        for kind in ("service", "socket"):
            (directory / f"penbal@{instance}.{kind}").symlink_to(f"penbal@.{kind}")
            units.append(str(directory / f"penbal@{instance}.{kind}"))
        return subprocess.run([analyze, "verify", f"--man={'yes' if man else 'no'}", *units],
                              capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
