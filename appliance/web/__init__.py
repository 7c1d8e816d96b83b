"""The sell screen and the admin panel (issue 8)."""
