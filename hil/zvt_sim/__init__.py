"""A ZVT card terminal simulator with scriptable outcomes, for tests and people.

See ``hil/zvt_sim/terminal.py`` (behaviour, Python API), ``server.py`` (TCP, pty and
the control channel) and ``trace.py`` (byte-trace recording and replay).
"""
