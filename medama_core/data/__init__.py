"""Data tables shipped with Medama, read through importlib.resources."""
