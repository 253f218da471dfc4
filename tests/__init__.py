"""
penbal's test suite (trial); the tree mirrors src/penbal/.
"""
