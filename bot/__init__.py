"""sora-bot's core: platform-agnostic, imports no chat library (see docs/ARCHITECTURE.md)."""

__version__ = "0.1.0"
