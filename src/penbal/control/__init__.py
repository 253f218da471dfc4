"""
Run-time control of penbal: Pen's penctl text protocol on a TCP or unix socket.

L{penbal.penctl.commands} parses one line into a command, L{penbal.control.executor} applies
it to the running balancer (L{penbal.runtime.Runtime}), L{penbal.control.protocol}
speaks the protocol and L{penbal.control.client} is the C{penbal-ctl} tool.
"""
