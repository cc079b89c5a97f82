"""Moderation checks: one check per module, applied in the order `core.services` wires them."""
