"""The references the methods text cites, numbered in the order the text first cites them."""

from __future__ import annotations

REFERENCES: dict[str, str] = {
    "pytorch": "Paszke A, et al. PyTorch: an imperative style, high-performance deep learning library. "
    "Advances in Neural Information Processing Systems 32, 2019.",
    "fmriprep": "Esteban O, et al. fMRIPrep: a robust preprocessing pipeline for functional MRI. "
    "Nature Methods 16:111-116, 2019. doi:10.1038/s41592-018-0235-4",
    "unified": "Ashburner J, Friston KJ. Unified segmentation. NeuroImage 26(3):839-851, 2005. "
    "doi:10.1016/j.neuroimage.2005.02.018",
    "syn": "Avants BB, et al. Symmetric diffeomorphic image registration with cross-correlation: evaluating "
    "automated labeling of elderly and neurodegenerative brain. Medical Image Analysis 12(1):26-41, 2008. "
    "doi:10.1016/j.media.2007.06.004",
    "mni2009": "Fonov VS, et al. Unbiased average age-appropriate atlases for pediatric studies. NeuroImage "
    "54(1):313-327, 2011. doi:10.1016/j.neuroimage.2010.07.033",
    "tiv": "Malone IB, et al. Accurate automatic estimation of total intracranial volume: a nuisance variable "
    "with less nuisance. NeuroImage 104:366-372, 2015. doi:10.1016/j.neuroimage.2014.09.034",
    "bbr": "Greve DN, Fischl B. Accurate and robust brain image alignment using boundary-based registration. "
    "NeuroImage 48(1):63-72, 2009. doi:10.1016/j.neuroimage.2009.06.060",
    "power2012": "Power JD, et al. Spurious but systematic correlations in functional connectivity MRI "
    "networks arise from subject motion. NeuroImage 59(3):2142-2154, 2012. "
    "doi:10.1016/j.neuroimage.2011.10.018",
    "jenkinson": "Jenkinson M, et al. Improved optimization for the robust and accurate linear registration "
    "and motion correction of brain images. NeuroImage 17(2):825-841, 2002. doi:10.1006/nimg.2002.1132",
    "dvars": "Nichols TE. Notes on creating a standardized version of DVARS. arXiv:1704.01469, 2017.",
    "compcor": "Behzadi Y, et al. A component based noise correction method (CompCor) for BOLD and perfusion "
    "based fMRI. NeuroImage 37(1):90-101, 2007. doi:10.1016/j.neuroimage.2007.04.042",
    "pepolar": "Andersson JLR, Skare S, Ashburner J. How to correct susceptibility distortions in spin-echo "
    "echo-planar images: application to diffusion tensor imaging. NeuroImage 20(2):870-888, 2003. "
    "doi:10.1016/S1053-8119(03)00336-7",
    "fieldmap": "Jezzard P, Balaban RS. Correction for geometric distortion in echo planar images from B0 "
    "field variations. Magnetic Resonance in Medicine 34(1):65-73, 1995. doi:10.1002/mrm.1910340111",
    "nilearn": "Abraham A, et al. Machine learning for neuroimaging with scikit-learn. Frontiers in "
    "Neuroinformatics 8:14, 2014. doi:10.3389/fninf.2014.00014",
    "ledoitwolf": "Ledoit O, Wolf M. A well-conditioned estimator for large-dimensional covariance matrices. "
    "Journal of Multivariate Analysis 88(2):365-411, 2004. doi:10.1016/S0047-259X(03)00096-4",
    "marchingcubes": "Lewiner T, et al. Efficient implementation of marching cubes' cases with topological "
    "guarantees. Journal of Graphics Tools 8(2):1-15, 2003. doi:10.1080/10867651.2003.10487582",
    "thickness": "Fischl B, Dale AM. Measuring the thickness of the human cerebral cortex from magnetic resonance "
    "images. PNAS 97(20):11050-11055, 2000. doi:10.1073/pnas.200033797",
    "laplace": "Jones SE, Buchbinder BR, Aharon I. Three-dimensional mapping of cortical thickness using "
    "Laplace's equation. Human Brain Mapping 11(1):12-32, 2000. "
    "doi:10.1002/1097-0193(200009)11:1<12::AID-HBM20>3.0.CO;2-K",
    "conformal": "Haker S, Angenent S, Tannenbaum A, Kikinis R, Sapiro G, Halle M. Conformal surface "
    "parameterization for texture mapping. IEEE Transactions on Visualization and Computer Graphics 6(2):181-189, "
    "2000. doi:10.1109/2945.856998",
    "densityequalizing": "Gastner MT, Newman MEJ. Diffusion-based method for producing density-equalizing maps. "
    "PNAS 101(20):7499-7504, 2004. doi:10.1073/pnas.0400280101",
    "cmcf": "Kazhdan M, Solomon J, Ben-Chen M. Can mean-curvature flow be modified to be non-singular? Computer "
    "Graphics Forum 31(5):1745-1754, 2012. doi:10.1111/j.1467-8659.2012.03179.x",
    "sphericalregistration": "Fischl B, Sereno MI, Tootell RBH, Dale AM. High-resolution intersubject averaging "
    "and a coordinate system for the cortical surface. Human Brain Mapping 8(4):272-284, 1999. "
    "doi:10.1002/(SICI)1097-0193(1999)8:4<272::AID-HBM10>3.0.CO;2-4",
    "simplepoints": "Lee TC, Kashyap RL, Chu CN. Building skeleton models via 3-D medial surface/axis thinning "
    "algorithms. CVGIP: Graphical Models and Image Processing 56(6):462-478, 1994. doi:10.1006/cgip.1994.1042",
    "mriqc": "Esteban O, et al. MRIQC: Advancing the automatic prediction of image quality in MRI from unseen "
    "sites. PLoS ONE 12(9):e0184661, 2017. doi:10.1371/journal.pone.0184661",
    "dietrich": "Dietrich O, et al. Measurement of signal-to-noise ratios in MR images: influence of "
    "multichannel coils, parallel imaging, and reconstruction filters. JMRI 26(2):375-385, 2007. "
    "doi:10.1002/jmri.20969",
    "mortamet": "Mortamet B, et al. Automatic quality assessment in structural brain magnetic resonance "
    "imaging. MRM 62(2):365-372, 2009. doi:10.1002/mrm.21992",
    "efc": "Atkinson D, et al. Automatic correction of motion artifacts in magnetic resonance images using an "
    "entropy focus criterion. IEEE TMI 16(6):903-910, 1997. doi:10.1109/42.650886",
    "ghost": "Giannelli M, et al. Characterization of Nyquist ghost in EPI-fMRI acquisition sequences "
    "implemented on two clinical 1.5 T MR scanners. MRM 63(4):1119-1124, 2010. doi:10.1002/mrm.22286",
    "afni": "Cox RW. AFNI: software for analysis and visualization of functional magnetic resonance "
    "neuroimages. Comput Biomed Res 29(3):162-173, 1996. doi:10.1006/cbmr.1996.0014",
    "sklearn": "Pedregosa F, et al. Scikit-learn: machine learning in Python. Journal of Machine Learning "
    "Research 12:2825-2830, 2011.",
    "varoquaux": "Varoquaux G, et al. Assessing and tuning brain decoders: cross-validation, caveats, and "
    "guidelines. NeuroImage 145:166-179, 2017. doi:10.1016/j.neuroimage.2016.10.038",
    "ojala": "Ojala M, Garriga GC. Permutation tests for studying classifier performance. Journal of Machine "
    "Learning Research 11:1833-1863, 2010.",
    "combat": "Johnson WE, Li C, Rabinovic A. Adjusting batch effects in microarray expression data using "
    "empirical Bayes methods. Biostatistics 8(1):118-127, 2007. doi:10.1093/biostatistics/kxj037",
    "fortin": "Fortin JP, et al. Harmonization of cortical thickness measurements across scanners and sites. "
    "NeuroImage 167:104-120, 2018. doi:10.1016/j.neuroimage.2017.11.024",
}


class Citations:
    """Numbers references in the order they are first cited: ``cite("bbr")`` gives ``[1]``, the next new one ``[2]``."""

    def __init__(self) -> None:
        self._order: list[str] = []

    def __call__(self, *keys: str) -> str:
        """The bracketed numbers of ``keys`` (``[3, 4]``), numbering those not cited before."""
        numbers = []
        for key in keys:
            if key not in REFERENCES:
                raise KeyError(f"no reference {key!r}")
            if key not in self._order:
                self._order.append(key)
            numbers.append(self._order.index(key) + 1)
        return "[" + ", ".join(str(n) for n in numbers) + "]"

    def references(self) -> tuple[str, ...]:
        """The cited references, in citation order (the n-th is ``[n]``)."""
        return tuple(REFERENCES[key] for key in self._order)
