"""Sub-commands of the `hil` CLI, discovered like `appliance.commands`."""
