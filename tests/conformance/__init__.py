"""
Conformance tests: penbal and Debian's Pen side by side over the same backends.
"""
