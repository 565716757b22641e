"""Users, API tokens, subscription plans and users' subscriptions."""
