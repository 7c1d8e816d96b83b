"""The back office service: stores, registers, ops exactly once, relay, web-shop orders."""
