"""Plugins bundled with unitrain, one package each (installed as ``unitrain.plugins.<name>``)."""
