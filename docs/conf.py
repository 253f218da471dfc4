"""Sphinx configuration for penbal's documentation."""

project = "penbal"
author = "penbal developers"
copyright = "2026, penbal developers"
extensions: list[str] = []
exclude_patterns = ["_build", "examples"]
html_theme = "alabaster"
nitpicky = False
