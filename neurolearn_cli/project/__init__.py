"""Collaborative projects: a pinned local workflow, pseudonymized site bundles, pooled analyses and a report."""
