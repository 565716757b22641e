"""Incidents, timelines and mandatory postmortems."""
