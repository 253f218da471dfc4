# -*- test-case-name: tests.policies.test_choice -*-
"""
Which policy Pen's selection flags mean: C{-r}, C{-h}, C{-W}, C{--prio}, or C{--policy NAME}.

As in Pen, the client table (sticky selection) is on unless C{-r} is given: C{-W} alone is
weighted selection for new clients with returning clients sent back to their backend, and
C{-r -W} is weighted selection alone.  C{--policy NAME} names one policy exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

PEN_FLAGS = {"hash": "-h/--hash", "weight": "-W/--weight", "prio": "--prio"}


class PolicyChoiceError(ValueError):
    """The selection flags contradict each other; the message is one line."""


@dataclass(frozen=True)
class PolicyChoice:
    """A policy plugin by name, and for C{sticky} the policy that places new clients."""

    name: str
    base: str | None = None

    def describe(self) -> str:
        """How the start-up log names the choice."""
        if self.base is not None:
            return f"{self.name} (new clients by {self.base})"
        return self.name


def choose_policy(
    policy: str | None,
    roundrobin: bool = False,
    hash: bool = False,
    weight: bool = False,
    prio: bool = False,
) -> PolicyChoice:
    """Resolve the command line's selection options to one L{PolicyChoice}."""
    algorithms = [name for name, given in (("hash", hash), ("weight", weight), ("prio", prio))
                  if given]
    if policy is not None:
        flags = [PEN_FLAGS[name] for name in algorithms] + (["-r/--roundrobin"] * roundrobin)
        if flags:
            raise PolicyChoiceError(
                f"--policy {policy} conflicts with {', '.join(flags)}: "
                "expected either --policy NAME or Pen's selection flags, not both"
            )
        return PolicyChoice(policy)
    if len(algorithms) > 1:
        given = " and ".join(PEN_FLAGS[name] for name in algorithms)
        raise PolicyChoiceError(
            f"{given} conflict: expected at most one of -h/--hash, -W/--weight, --prio"
        )
    if algorithms:
        (name,) = algorithms
        return PolicyChoice(name) if roundrobin else PolicyChoice("sticky", base=name)
    return PolicyChoice("roundrobin") if roundrobin else PolicyChoice("sticky")
