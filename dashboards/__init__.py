"""Dashboards and rules generated from the signal catalogue, and the web views."""
