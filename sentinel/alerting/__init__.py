"""Alert lifecycle, routing, on-call schedules, escalation and delivery."""
