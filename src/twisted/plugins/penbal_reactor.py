"""
The C{penbal-epoll} reactor, for C{twist --reactor penbal-epoll} (see L{penbal.reactor}).
"""

from twisted.application.reactors import Reactor

penbal_epoll = Reactor(
    "penbal-epoll", "penbal.reactor", "epoll without the per-event log context (faster relaying)"
)
