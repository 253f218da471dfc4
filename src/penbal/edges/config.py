# -*- test-case-name: tests.edges.test_config -*-
"""
The command-line options of the edge features, their validation, and the L{Edges} they make.

L{EdgeOptions} is mixed into C{penbal.options.Options}; C{check_edges()} turns the parsed
values into an L{EdgeConfig} (every mistake is one line naming the option and what it expects)
and L{build_edges} turns that into the run-time L{Edges}, or None when every feature is off.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.python import usage

from penbal.address import BACKEND_FORM, BackendSpec, ListenSpec, SpecError, parse_backend
from penbal.backend import Backend
from penbal.edges.acl import AccessList, AclEntry, AclError, AclTable, parse_network
from penbal.edges.proxyheader import PROXY_VERSIONS
from penbal.edges.tlssettings import (
    BackendTLSSettings,
    ListenTLSSettings,
    TLSConfigError,
    is_tls_endpoint,
    parse_tls_version,
)
from penbal.optiontypes import number

if TYPE_CHECKING:
    from penbal.edges.gate import Edges

DEFAULT_PROXY_NETWORKS = "127.0.0.0/8,::1/128"




@dataclass(frozen=True)
class EdgeConfig:
    """The edge features asked for on the command line, validated."""

    backend_tls: BackendTLSSettings | None = None
    listen_tls: ListenTLSSettings = field(default_factory=ListenTLSSettings)
    send_proxy: str | None = None
    proxy_networks: tuple[AclEntry, ...] | None = None
    forwarded: bool = False
    acls: tuple[str, ...] = ()
    client_acl: int = 0
    abuse: BackendSpec | None = None
    idle_timeout: float = 0.0
    max_per_client: int = 0

    @property
    def accept_proxy(self) -> bool:
        """True when clients come through a balancer that sends a PROXY header."""
        return self.proxy_networks is not None


class EdgeOptions:
    """The edge options, mixed into C{twist penbal}'s options."""

    optFlags = [
        ["backend-tls", None,
         "Connect to backends over TLS, verifying each certificate (platform CAs unless"
         " --backend-tls-ca)."],
        ["accept-proxy", None,
         "Clients come through a balancer that sends a PROXY header (v1 or v2): use the"
         " client address in it."],
        ["http-forwarded", "H",
         "HTTP mode: add X-Forwarded-For and X-Forwarded-Proto to every request head."],
    ]
    optParameters = [
        ["backend-tls-ca", None, None,
         "CA certificates (PEM) that backend certificates must chain to; implies --backend-tls."],
        ["backend-tls-cert", None, None,
         "Client certificate (PEM) shown to backends that ask for one."],
        ["backend-tls-key", None, None,
         "Private key (PEM) of --backend-tls-cert, if not in the same file."],
        ["tls-min-version", None, None,
         "Lowest TLS version accepted, 1.2 or 1.3 (ssl:/tls: LISTEN and backends; default 1.2)."],
        ["tls-ciphers", None, None,
         "OpenSSL cipher list for TLS 1.2 (ssl:/tls: LISTEN and backends)."],
        ["send-proxy", None, None,
         "Send a PROXY protocol header, v1 or v2, first on each backend connection."],
        ["proxy-networks", None, DEFAULT_PROXY_NETWORKS,
         "With --accept-proxy: comma-separated ADDR[/PREFIX] allowed to send PROXY headers."],
        ["client-acl", None, 0, "Access list (0-9) checked for clients (Pen's client_acl).",
         number(int, 0, "--client-acl", 9)],
        ["abuse", "B", None,
         "HOST:PORT that clients denied by the client ACL are sent to (else they are closed)."],
        ["idle-timeout", None, 0.0,
         "Close a connection idle both ways for this many seconds (0 = never).",
         number(float, 0, "--idle-timeout")],
        ["max-per-client", None, 0,
         "Connections one client address may hold at once (0 = no limit).",
         number(int, 0, "--max-per-client")],
    ]

    edges: EdgeConfig
    listen_spec: ListenSpec | None

    def __init__(self) -> None:
        super().__init__()
        self["acl"] = []
        self["backend-tls-name"] = []
        self.edges = EdgeConfig()

    if TYPE_CHECKING:  # provided by usage.Options, which this is mixed into

        def __getitem__(self, key: str) -> Any: ...

        def __setitem__(self, key: str, value: Any) -> None: ...

        def get(self, key: str, default: Any = None) -> Any: ...

    def opt_acl(self, value: str) -> None:
        """Add an entry to an access list: 'N permit|deny ADDR[/PREFIX]'; repeat for more."""
        self["acl"].append(value)

    def opt_backend_tls_name(self, value: str) -> None:
        """Name backend certificates must carry: NAME for all, or BACKEND=NAME; repeatable."""
        self["backend-tls-name"].append(value)

    def check_edges(self, backends: list[BackendSpec]) -> EdgeConfig:
        """Validate the edge options (after LISTEN and the backends are known)."""
        try:
            config = self._edge_config(backends)
        except (AclError, TLSConfigError, SpecError) as e:
            raise usage.UsageError(str(e)) from None
        acl_only = replace(EdgeConfig(), acls=config.acls, client_acl=config.client_acl)
        if self.get("udp") and config != acl_only:
            raise usage.UsageError(
                "TLS, PROXY, HTTP, abuse-server and connection-hygiene options apply to TCP"
                " only, not -U (the client ACL applies to both)"
            )
        self.edges = config
        return config

    def _edge_config(self, backends: list[BackendSpec]) -> EdgeConfig:
        listen = self.listen_spec
        assert listen is not None
        accept_proxy = bool(self["accept-proxy"])
        if listen.endpoint.startswith("haproxy:"):
            listen = self.listen_spec = replace(listen, endpoint=listen.endpoint[len("haproxy:"):])
            accept_proxy = True
        tls_listen = is_tls_endpoint(listen.endpoint)
        if accept_proxy and tls_listen:
            raise usage.UsageError(
                "--accept-proxy cannot be used with an ssl: or tls: LISTEN endpoint"
                " (the PROXY header would have to come before the TLS handshake)"
            )
        min_version = self["tls-min-version"]
        if min_version is not None:
            min_version = parse_tls_version(min_version)
        ciphers = self["tls-ciphers"]
        backend_tls = self._backend_tls(backends, min_version, ciphers)
        if (min_version or ciphers) and not (tls_listen or backend_tls):
            raise usage.UsageError(
                "--tls-min-version and --tls-ciphers need an ssl: or tls: LISTEN endpoint"
                " or --backend-tls"
            )
        send_proxy = self["send-proxy"]
        if send_proxy is not None and send_proxy.lower() not in PROXY_VERSIONS:
            raise usage.UsageError(f"invalid --send-proxy {send_proxy!r}: expected v1 or v2")
        AclTable.from_texts(self["acl"])
        abuse = None
        if self["abuse"] is not None:
            abuse = parse_backend(self["abuse"], listen.port)
        return EdgeConfig(
            backend_tls=backend_tls,
            listen_tls=ListenTLSSettings(min_version if tls_listen else None,
                                         ciphers if tls_listen else None,
                                         terminates=tls_listen),
            send_proxy=send_proxy.lower() if send_proxy is not None else None,
            proxy_networks=self._proxy_networks() if accept_proxy else None,
            forwarded=bool(self["http-forwarded"]),
            acls=tuple(self["acl"]),
            client_acl=self["client-acl"],
            abuse=abuse,
            idle_timeout=self["idle-timeout"],
            max_per_client=self["max-per-client"],
        )

    def _proxy_networks(self) -> tuple[AclEntry, ...]:
        texts = [t for t in str(self["proxy-networks"]).split(",") if t.strip()]
        if not texts:
            raise usage.UsageError("empty --proxy-networks: expected ADDR[/PREFIX],...")
        return tuple(AclEntry(True, parse_network(text)) for text in texts)

    def _backend_tls(
        self, backends: list[BackendSpec], min_version: str | None, ciphers: str | None
    ) -> BackendTLSSettings | None:
        names: dict[str, str] = {}
        default_name = None
        known = {spec.address: spec for spec in backends}
        for text in self["backend-tls-name"]:
            target, equals, name = text.rpartition("=")
            if not equals:
                default_name = text.strip()
                continue
            spec = parse_backend(target, self.listen_spec.port if self.listen_spec else None)
            if spec.address not in known:
                raise usage.UsageError(
                    f"--backend-tls-name {text!r} names no backend: expected NAME or"
                    f" BACKEND=NAME with BACKEND one of {', '.join(known)} ({BACKEND_FORM})"
                )
            names[spec.address] = name.strip()
        wanted = (
            self["backend-tls"]
            or self["backend-tls-ca"] is not None
            or self["backend-tls-cert"] is not None
            or bool(self["backend-tls-name"])
        )
        if not wanted:
            if self["backend-tls-key"] is not None:
                raise usage.UsageError("--backend-tls-key needs --backend-tls-cert")
            return None
        if self["backend-tls-key"] is not None and self["backend-tls-cert"] is None:
            raise usage.UsageError("--backend-tls-key needs --backend-tls-cert")
        if any(not name for name in names.values()) or default_name == "":
            raise usage.UsageError("empty --backend-tls-name: expected NAME or BACKEND=NAME")
        settings = BackendTLSSettings(
            ca_file=self["backend-tls-ca"],
            cert_file=self["backend-tls-cert"],
            key_file=self["backend-tls-key"],
            default_name=default_name,
            names=names,
            min_version=min_version,
            ciphers=ciphers,
        )
        from penbal.edges.tls import BackendTLS  # pyOpenSSL, only when TLS is asked for

        BackendTLS(settings, _NO_CLOCK)  # load the files and build the context now
        return settings


class _NoClock:
    """A stand-in clock for validating TLS settings (nothing is scheduled)."""

    def seconds(self) -> float:
        return 0.0


_NO_CLOCK: Any = _NoClock()


def build_edges(
    config: EdgeConfig, reactor: IReactorTCP, clock: IReactorTime
) -> Edges | None:
    """The run-time edges for C{config}, or None when no edge feature is on."""
    if config == EdgeConfig():
        return None
    from penbal.edges.gate import Edges

    backend_tls = None
    if config.backend_tls is not None:
        from penbal.edges.tls import BackendTLS  # pyOpenSSL, only when TLS is asked for

        backend_tls = BackendTLS(config.backend_tls, clock)
    return Edges(
        reactor,
        clock,
        acls=AclTable.from_texts(config.acls),
        client_acl=config.client_acl,
        abuse=Backend(config.abuse, -1) if config.abuse is not None else None,
        send_proxy=config.send_proxy,
        backend_tls=backend_tls,
        forwarded=config.forwarded,
        idle_timeout=config.idle_timeout,
        max_per_client=config.max_per_client,
        proxy_networks=(
            AccessList(config.proxy_networks) if config.proxy_networks is not None else None
        ),
    )

