"""Sub-commands of the `appliance` CLI.

Every module in this package that defines ``register(subparsers)`` adds its own
sub-commands; modules are discovered, so adding a command never means editing a
central list. ``register`` must stay import-light (argparse only): heavy imports
belong inside the handler so `appliance --help` and start-up stay fast.
"""
