"""The team self-service portal (``/portal/``): keys, members and usage for team members."""
