"""Serverless sync of saved sales between the registers of a shop's LAN."""
