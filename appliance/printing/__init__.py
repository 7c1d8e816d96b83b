"""The printing feature of the register."""
