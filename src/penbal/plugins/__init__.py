"""
The plugin package of penbal's selection policies.

Third parties add a policy by shipping C{penbal/plugins/NAME.py} (no C{__init__.py}) on
C{sys.path}; see docs/writing-a-policy.rst.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__: list[str] = []
