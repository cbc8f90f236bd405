"""Bundled plugins: one package each, discovered by name (see ``unitrain.plugins``)."""
