"""Chat platform adapters: each turns platform events into core calls and core events into
platform output. Adapters import the core, never each other."""
