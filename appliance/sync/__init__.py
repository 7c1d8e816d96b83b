"""The sync feature of the register."""
