"""Operations: jobs as an organization follows them, workers, plan limits, cleanup (seed 004)."""
