"""The package version (its own module, so the runtime can key caches on it)."""

__version__ = "0.1.0"
