"""Offline tools over the program's output: render, validate, scan, diff."""
