"""Pharmacogenomics: genotype facts -> star-allele diplotype -> CPIC phenotype.

See :mod:`medtwin.pharmacology.pgx.caller` for the calling method and docs/models/pgx.md
for the sources, the tables and the validation against PharmCAT.
"""

from medtwin.pharmacology.pgx.caller import (
    GENES,
    GeneCall,
    SampleGenotype,
    call_all,
    call_gene,
    gene_table,
)
from medtwin.pharmacology.pgx.calls import call_facts, calls_report, genotypes_from_facts

__all__ = [
    "GENES",
    "GeneCall",
    "SampleGenotype",
    "call_all",
    "call_facts",
    "call_gene",
    "calls_report",
    "gene_table",
    "genotypes_from_facts",
]
