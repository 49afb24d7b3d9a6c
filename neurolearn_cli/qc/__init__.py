"""Quality control: image-quality metrics (IQMs), figures and HTML reports.

- :mod:`~neurolearn_cli.qc.measures`: IQMs shared by T1w and BOLD (EFC, FBER, SNR, FWHM, summaries);
- :mod:`~neurolearn_cli.qc.masks`: head, air ("hat") and artifact masks of a T1w;
- :mod:`~neurolearn_cli.qc.anatomical`: T1w IQMs with MRIQC's names;
- :mod:`~neurolearn_cli.qc.functional`: BOLD IQMs with MRIQC's names;
- :mod:`~neurolearn_cli.qc.confounds`: correlations among the fmri stage's confounds;
- :mod:`~neurolearn_cli.qc.figures`: report figures as PNG/SVG bytes;
- :mod:`~neurolearn_cli.qc.iqm_catalog`: each IQM's group, unit, meaning and MRIQC definition;
- :mod:`~neurolearn_cli.qc.group`: group tables and outlier flags;
- :mod:`~neurolearn_cli.qc.group_figures`: strip plots of one IQM across images (inline SVG);
- :mod:`~neurolearn_cli.qc.group_report`: the group HTML pages;
- :mod:`~neurolearn_cli.qc.report`: the participant HTML page.
"""
