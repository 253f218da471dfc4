"""Sphinx configuration for penbal's documentation."""

project = "penbal"
author = "penbal developers"
copyright = "2026, penbal developers"
extensions: list[str] = []
exclude_patterns = ["_build", "examples"]
html_theme = "alabaster"
nitpicky = False

# The man page (scripts/build-deb, sphinx-build -b man): the command line reference, which
# tests/test_docs.py keeps complete against the option table.
man_pages = [
    ("cli", "penbal", "TCP and UDP load balancer in the spirit of Pen, aware of Galera Cluster",
     [author], 1),
]
