"""Animator backends: one per module."""
