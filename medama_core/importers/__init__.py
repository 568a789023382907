"""Readers of other analytics tools' export files, each giving our import rows (importers/rows.py)."""
