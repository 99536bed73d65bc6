"""CI regression of gradient curves: baselines, log-space tolerances, a diff table."""
