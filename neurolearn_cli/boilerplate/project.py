"""The methods paragraph of a collaborative project's pooling: who contributed what, and how sites were handled."""

from __future__ import annotations

from collections.abc import Sequence

from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Section
from neurolearn_cli.boilerplate.wording import listing, plural


def pooling_section(project: str, sites: Sequence[str], versions: Sequence[str], contributed: int, excluded: int,
                    pseudonymized: bool, feature_sets: Sequence[str], site_auc: Sequence[tuple[str, float, float]],
                    cite: Citations, rules: Sequence[str] = (), excluded_by_rule: int = 0,
                    computed: Sequence[str] = ()) -> Section:
    """How the pooled data came to be, and the site effect measured before and after ComBat.

    ``site_auc`` holds (feature set, AUC raw, AUC after ComBat) for the sets where it could be measured;
    ``rules`` the project's QC exclusion rules in words, ``excluded_by_rule`` how many participants they left out;
    ``computed`` the tables the pool computed from the shared ones, in words.
    """
    text = [
        f"Each of {plural(len(sites), 'site')} ({listing(list(sites))}) ran the local workflow pinned by project "
        f"{project} (neurolearn {listing(sorted(set(versions)))}) on its own scans and shared only feature tables "
        f"({listing(list(feature_sets))}), selected participants.tsv columns and a quality-control table"
        + (", under pseudonymous participant IDs (a keyed hash whose key stayed at the site)" if pseudonymized else "")
        + f". {plural(contributed, 'participant')} contributed features; {plural(excluded, 'participant')} whose "
        "processing failed, was skipped or did not run were excluded."
        + (f" The project's quality-control rules ({listing(list(rules))}) left out "
           f"{plural(excluded_by_rule, 'further participant')}." if rules else "")
        + (f" From the pooled tables, the pool computed {listing(list(computed))}." if computed else ""),
    ]
    if site_auc:
        measured = listing([f"{name}: {raw:.2f} raw, {after:.2f} after ComBat" for name, raw, after in site_auc])
        text.append("The site effect was measured as the cross-validated area under the ROC curve of a logistic "
                    "regression predicting each participant's site from the features (0.5: no site information), "
                    f"raw and with empirical-Bayes ComBat {cite('combat', 'fortin')} fitted on the training folds "
                    f"only ({measured}).")
    return Section(f"Pooling of project {project}", tuple(text))
