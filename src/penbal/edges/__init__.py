"""
What happens at the edges of a relayed connection: TLS to backends (and TLS termination
settings), the PROXY protocol both ways, HTTP X-Forwarded-For, Pen's client ACLs, and
connection hygiene (idle timeout, per-client cap).
"""
