# -*- test-case-name: tests.penctl.test_commands -*-
"""
The control port's C{help}: one line per command of the control language.
"""

from __future__ import annotations

from penbal.address import BACKEND_FORM

HELP = (
    "servers                      list the backends (numbered from 0)",
    "server N                     show backend N",
    "server N up|down|drain       take N in, or out: no new connections, live ones go on",
    "server N [address A] [port P] [max M] [hard H] [weight W] [prio P] [acl A] [blacklist T]",
    f"add {BACKEND_FORM}",
    "remove N [now]               remove backend N (drains first unless now)",
    "no servers                   empty the backend table",
    "status [html|json|text]      status report",
    "mode                         selection flags and policy",
    "policy [NAME [BASE]]         show or set the selection policy",
    "roundrobin|hash|weight|prio  Pen's selection flags (and 'no X')",
    "stubborn / no stubborn       no failover when the first choice fails",
    "http / no http               add X-Forwarded-For to HTTP requests (as -H)",
    "blacklist|timeout|tracking [SECONDS]",
    "clients_max|conn_max [N]",
    "emergency [HOST:PORT] / no emergency",
    "acl N permit|deny ADDR[/PREFIX] [NETMASK] / no acl N",
    "client_acl|control_acl [N]   which access list clients / the control port use",
    "recent [SECONDS]             clients seen lately",
    "write [FILE|-]               write the running configuration as commands",
    "reload                       re-read the config file (as SIGHUP)",
    "listen|control|pid|log       where penbal listens, its pid, where it logs",
    "prompt / quit                keep this connection open / close it",
    "exit                         stop penbal gracefully (as SIGTERM)",
)
