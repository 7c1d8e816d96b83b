"""The register appliance: register core, storage, sync, web and back office."""

__version__ = "0.1.0"
