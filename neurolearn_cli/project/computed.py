"""The project's computed feature tables (:class:`~neurolearn_cli.project.model.ComputedSet`), from the pooled sets.

Computed at the pool, from the tables the sites shared, so a site exports
nothing more and every computed value traces back to the bundles' numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from neurolearn_cli.project.model import ComputedSet


def computed_table(computed: ComputedSet, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The table ``computed`` describes, from the pooled feature ``tables`` (by set name, participant-indexed).

    Raises
    ------
    ValueError
        A ratio of two sets that share no column.
    """
    if computed.operation == "concat":
        parts = [tables[name].add_prefix(f"{name}_") for name in computed.of]
        return pd.concat(parts, axis=1, join="outer").sort_index(kind="stable")
    numerator, denominator = (tables[name] for name in computed.of)
    shared = [column for column in numerator.columns if column in set(denominator.columns)]
    if not shared:
        raise ValueError(f"{computed.of[0]} and {computed.of[1]} share no column to divide")
    index = numerator.index.union(denominator.index).sort_values()
    top = numerator.reindex(index)[shared].astype(float)
    bottom = denominator.reindex(index)[shared].astype(float)
    return top / bottom.where(bottom != 0, np.nan)
