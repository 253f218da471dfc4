"""
Tests of the edge features: TLS, PROXY protocol, X-Forwarded-For, client ACLs, hygiene.
"""
