"""Small helpers shared by every component: clock, database engines, logging.

Nothing here imports translator, sentinel, release_gate or postmortems.
"""
