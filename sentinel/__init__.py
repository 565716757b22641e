"""Sentinel: turns business signals into alerts."""
