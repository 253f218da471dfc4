"""
penbal's configuration as data: Pen's config file (control commands, one per line), the
running configuration it describes, and reloading it on SIGHUP without dropping a connection.
"""
