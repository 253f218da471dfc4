"""
Pen's command language, shared by the control port (C{penbal.control}) and the config file
(C{penbal.config}): the words, the parsed commands and the help text.
"""
