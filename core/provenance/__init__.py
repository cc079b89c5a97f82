"""Provenance: visible label, invisible watermark, fingerprint, C2PA signing and reading, ledger."""
