"""Chat and web adapters, pure render functions, and the composition root (the CLI)."""
