"""The learners: one file per algorithm with its config and its update; ``robopg/registry.py`` names them."""
