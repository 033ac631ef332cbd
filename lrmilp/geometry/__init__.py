"""Geometry (in progress)."""
