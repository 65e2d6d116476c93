"""The routing benchmark: a labelled agent/IDE workload replayed through the complexity router."""
