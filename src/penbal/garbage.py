# -*- test-case-name: tests.test_garbage -*-
"""
Keeping Python's cyclic garbage collector off the relay's path.

A relayed connection leaves no reference cycle (its legs and transports drop their references
to each other when they close, see L{penbal.relay.legs} and L{penbal.relay.leantransport}),
so reference counting frees it and the collector's young generations stay small.  What is
left are the full collections, which walk every object the process holds: after start-up
that is mostly Twisted, the policies and the options, about 100,000 objects that live as long
as the process and take tens of milliseconds to walk, a pause every connection of that
moment waits through.  Once the reactor runs, L{freeze_startup_objects} moves them into the
permanent generation (C{gc.freeze}), which the collector never walks.

The price: a frozen object that later becomes cyclic garbage is never collected by the
young collections.  Start-up objects live as long as the process, except what a reload
(SIGHUP or the C{reload} command, with C{-F}) replaces: a reload that changed something ends
with L{refreeze}, one full collection over everything (the pause start-up had), which frees
what it replaced and freezes the rest again, so that reloads do not add up to a leak.
Control-port edits do not refreeze (an operator's script may send them often, and each would
pause every connection): what they replace from the frozen set stays, once per object, since
what replaces it is not frozen until the next reload.
"""

from __future__ import annotations

import gc

from twisted.internet.interfaces import IReactorCore


def freeze_startup_objects(reactor: IReactorCore) -> None:
    """Once C{reactor} runs (every port listening, every plugin loaded), collect once and
    freeze what is left: from then on collections walk only what was made after."""
    reactor.callWhenRunning(freeze_now)


def freeze_now() -> int:
    """Collect, then freeze every object that survived; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def refreeze() -> int:
    """Thaw the frozen objects, collect (freeing frozen objects that became cyclic garbage,
    such as what a reload replaced), and freeze what is left; returns how many are frozen.
    A process that froze nothing (penbal embedded elsewhere, a test) is left as it is."""
    if not gc.get_freeze_count():
        return 0
    gc.unfreeze()
    return freeze_now()
