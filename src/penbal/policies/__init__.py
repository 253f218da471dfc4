# -*- test-case-name: tests.policies -*-
"""
Built-in selection policies; their plugin objects are in C{penbal.plugins.penbal_policies}.
"""
