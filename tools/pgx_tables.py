"""Write medtwin's pharmacogene tables (src/medtwin/pharmacology/pgx/data/*.json).

Source: the CPIC allele definition, allele functionality and diplotype-phenotype
tables, as PharmCAT distributes them (``definitions/alleles/<GENE>_translation.json``
and ``definitions/phenotype/<GENE>.json``, data version 2025-11-05, PharmCAT v3.1,
MPL-2.0; see NOTICE). Run from the repository root::

    python tools/pgx_tables.py ../shared/data/genomics/pharmcat/definitions

Each table keeps the facts medtwin calls from, in its own layout:

* ``positions``: GRCh38 position (VCF), dbSNP id, HGVS name, VCF reference and alternates;
* ``alleles``: name, the VCF allele at each position (``null``: not part of the definition),
  whether it is the reference allele, its CPIC clinical function and activity value;
* ``phenotypes``: the CPIC phenotype (and activity score) for each unordered pair of
  allele function keys (activity values for CYP2C9 and DPYD, function names otherwise),
  which is how CPIC builds its diplotype-phenotype tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GENES = ("CYP2C19", "CYP2C9", "VKORC1", "CYP4F2", "SLCO1B1", "TPMT", "NUDT15", "DPYD", "CYP3A5")
SRC = Path(__file__).resolve().parents[1] / "src" / "medtwin"
OUT = SRC / "pharmacology" / "pgx" / "data"
POSITIONS = SRC / "ingest" / "data" / "pharmacogene_positions.csv"

CITATIONS = {
    "CYP2C19": "Lee CR et al. CPIC guideline for CYP2C19 genotype and clopidogrel therapy: 2022 update. "
    "Clin Pharmacol Ther 2022;112:959-967; CPIC CYP2C19 allele definition, functionality and "
    "diplotype-phenotype tables",
    "CYP2C9": "Theken KN et al. CPIC guideline for CYP2C9 and NSAIDs. Clin Pharmacol Ther 2020;108:191-200; "
    "Johnson JA et al. CPIC guideline for pharmacogenetics-guided warfarin dosing: 2017 update. "
    "Clin Pharmacol Ther 2017;102:397-404; CPIC CYP2C9 tables (activity score method)",
    "VKORC1": "Johnson JA et al. CPIC warfarin guideline 2017 update. Clin Pharmacol Ther 2017;102:397-404; "
    "CPIC VKORC1 allele definition table (rs9923231, -1639G>A)",
    "CYP4F2": "Johnson JA et al. CPIC warfarin guideline 2017 update. Clin Pharmacol Ther 2017;102:397-404; "
    "CPIC/PharmVar CYP4F2 allele definition table (no CPIC phenotype assignment)",
    "SLCO1B1": "Cooper-DeHoff RM et al. CPIC guideline for SLCO1B1, ABCG2 and CYP2C9 and statin-associated "
    "musculoskeletal symptoms. Clin Pharmacol Ther 2022;111:1007-1021; CPIC SLCO1B1 tables",
    "TPMT": "Relling MV et al. CPIC guideline for thiopurine dosing based on TPMT and NUDT15 genotypes: "
    "2018 update. Clin Pharmacol Ther 2019;105:1095-1105; CPIC TPMT tables",
    "NUDT15": "Relling MV et al. CPIC thiopurine guideline 2018 update. Clin Pharmacol Ther "
    "2019;105:1095-1105; CPIC NUDT15 tables",
    "DPYD": "Amstutz U et al. CPIC guideline for DPYD genotype and fluoropyrimidine dosing: 2017 update. "
    "Clin Pharmacol Ther 2018;103:210-216 (activity score method); CPIC DPYD tables",
    "CYP3A5": "Birdwell KA et al. CPIC guidelines for CYP3A5 genotype and tacrolimus dosing. Clin Pharmacol "
    "Ther 2015;98:19-24; CPIC CYP3A5 tables",
}


def gene_table(definitions: Path, gene: str) -> dict[str, object]:
    """medtwin's table for one gene from PharmCAT's definition and phenotype files."""
    alleles_file = json.loads((definitions / "alleles" / f"{gene}_translation.json").read_text())
    phenotype_path = definitions / "phenotype" / f"{gene}.json"
    phenotype = json.loads(phenotype_path.read_text()) if phenotype_path.exists() else None
    functions: dict[str, tuple[str | None, str | None, str | None]] = {}
    pairs: dict[tuple[str, ...], tuple[str, str | None]] = {}
    if phenotype is not None:
        for entry in phenotype["namedAlleles"]:
            functions[entry["name"]] = (
                entry["functionValue"],
                entry["activityValue"],
                entry["lookupKey"],
            )
        keys = {name: value[2] for name, value in functions.items()}
        for diplotype in phenotype["diplotypes"]:
            pair: list[str] = []
            for name, count in diplotype["diplotypekey"].items():
                pair += [keys[name]] * count
            key = tuple(sorted(pair))
            value = (diplotype["generesult"], diplotype["activityScore"])
            if pairs.setdefault(key, value) != value:
                raise SystemExit(f"{gene}: phenotype of {key} is not a function of the pair")
    positions = [
        {
            "position": v["position"],
            "rsid": v["rsid"],
            "hgvs": v["chromosomeHgvsName"],
            "ref": v["ref"],
            "alts": v["alts"],
        }
        for v in alleles_file["variants"]
    ]
    # PharmCAT splits an allele whose definition has an ambiguous core into sub-alleles
    # (SLCO1B1 *45.001, *45.002); they are reported as the allele they belong to.
    report_as = alleles_file.get("suballelesMap") or {}
    alleles = []
    for allele in alleles_file["namedAlleles"]:
        reported = report_as.get(allele["name"], allele["name"])
        function, activity, key = functions.get(reported, (None, None, None))
        alleles.append(
            {
                "name": allele["name"],
                "report_as": report_as.get(allele["name"], allele["name"]),
                "reference": allele["reference"],
                "structural_variant": allele["structuralVariant"],
                "pattern": allele["alleles"],
                "function": function,
                "activity_value": activity,
                "phenotype_key": key,
            }
        )
    return {
        "gene": gene,
        "chromosome": alleles_file["chromosome"],
        "build": "GRCh38",
        "refseq": alleles_file["refSeqChromosomeId"],
        "source": {
            "citation": CITATIONS[gene],
            "tables": "CPIC allele definition, allele functionality and diplotype-phenotype tables "
            "(https://cpicpgx.org/guidelines/; https://www.clinpgx.org), as distributed in PharmCAT's "
            "definition files (https://github.com/PharmGKB/PharmCAT, MPL-2.0)",
            "data_version": alleles_file["version"],
            "modified": alleles_file["modificationDate"],
            "genome_build": alleles_file["genomeBuild"],
        },
        "positions": positions,
        "alleles": alleles,
        "phenotypes": [
            {"keys": list(key), "phenotype": value[0], "activity_score": value[1]}
            for key, value in sorted(pairs.items())
        ],
    }


def main(argv: list[str]) -> None:
    definitions = Path(argv[1] if len(argv) > 1 else "../shared/data/genomics/pharmcat/definitions")
    OUT.mkdir(parents=True, exist_ok=True)
    rows = ["gene,chromosome,position,rsid,ref,alts"]
    for gene in GENES:
        table = gene_table(definitions, gene)
        path = OUT / f"{gene}.json"
        path.write_text(json.dumps(table, indent=1) + "\n")
        print(f"{path}: {len(table['positions'])} positions, {len(table['alleles'])} alleles")
        for p in table["positions"]:  # type: ignore[attr-defined]
            alts = "|".join(p["alts"])
            rows.append(
                f"{gene},{table['chromosome']},{p['position']},{p['rsid'] or ''},{p['ref']},{alts}"
            )
    # The positions the VCF importer keeps (ingest may not import pharmacology: a data copy).
    POSITIONS.write_text("\n".join(rows) + "\n")
    print(f"{POSITIONS}: {len(rows) - 1} positions")


if __name__ == "__main__":
    main(sys.argv)
