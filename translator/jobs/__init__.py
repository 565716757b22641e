"""Translation jobs, their blocks, the database-backed queue and the workers."""
