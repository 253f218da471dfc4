# -*- test-case-name: tests.bench.test_stacks -*-
"""
Where a sampled relay spends its time: own-time and inclusive-time top lists from the raw
(collapsed-stack) output of ``py-spy record -f raw``.

Each line of that output is one distinct stack, outermost frame first, frames separated by
``;``, each ``function (package/file.py:line)``, then a space and how many samples had it.  A
function's *own* time is the samples in which it is the innermost frame; its *inclusive* time
is the samples in which it is anywhere on the stack (counted once per sample, however deep it
recurses).  The inclusive list leaves out the frames found in every sample (the entry point
down to the reactor's loop), which say nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

#: What a sample with an empty stack counts as.
NO_FRAME = "(no Python frame)"


@dataclass
class Profile:
    """Samples per function: innermost (own) and anywhere on the stack (inclusive)."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


def parse_raw(lines: Iterable[str]) -> Profile:
    """Read py-spy's raw output; blank lines are skipped, anything else malformed raises
    ValueError."""
    profile = Profile()
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, space, count = line.rpartition(" ")
        if not space or not count.isdigit():
            raise ValueError(f"line {number} is not 'FRAMES COUNT': {line[:120]!r}")
        samples = int(count)
        # An empty stack: py-spy caught the thread with no Python frame (sampling without
        # pausing it, --nonblocking), which is time too.
        frames = stack.split(";") if stack else [NO_FRAME]
        profile.samples += samples
        profile.own[frames[-1]] += samples
        for frame in set(frames):
            profile.inclusive[frame] += samples
    return profile


def top(counts: Counter[str], total: int, limit: int) -> list[str]:
    """The ``limit`` largest counts as lines ``  12.3 %  frame``."""
    if total <= 0:
        return []
    return [f"{100.0 * n / total:6.1f} %  {frame}" for frame, n in counts.most_common(limit)]


def summary(profile: Profile, limit: int) -> str:
    """Both top lists, own time first, as text."""
    everywhere = {f for f, n in profile.inclusive.items() if n == profile.samples}
    inclusive = Counter({f: n for f, n in profile.inclusive.items() if f not in everywhere})
    lines = [f"samples: {profile.samples}", "", f"own time (top {limit}):"]
    lines += top(profile.own, profile.samples, limit)
    lines += ["", f"inclusive time (top {limit}; {len(everywhere)} frames found in every"
              " sample left out):"]
    lines += top(inclusive, profile.samples, limit)
    return "\n".join(lines)
