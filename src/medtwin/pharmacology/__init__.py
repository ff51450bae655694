"""Models of drugs (PK/PD, each implementing :mod:`medtwin.model`) and pharmacogenomics.

Kept light: the model registry imports every module of this package to find ``MODELS``.
"""
