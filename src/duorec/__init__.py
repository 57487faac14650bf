"""duorec: recommend movies to two people who watch together."""

__version__ = "0.1.0"
