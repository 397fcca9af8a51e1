"""ponder: think hard with local reasoning models."""

__version__ = "0.2.1"
