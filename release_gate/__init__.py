"""Release gate: locks, canary deploys, the judge, promotion and rollback."""
