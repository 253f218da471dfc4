"""
An HA pair of penbal instances with keepalived, in network namespaces the tests create.
"""
