"""The payments feature of the register."""
