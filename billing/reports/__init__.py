"""Usage and billing reports (`/reports/`): read-only pages over `UsageRollup`."""
