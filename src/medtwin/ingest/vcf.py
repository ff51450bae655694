"""Genotypes from VCF files (plain or bgzip) and 23andMe / AncestryDNA raw data files.

Only the **pharmacogene positions** are kept: the GRCh38 positions that the CPIC allele
definitions of medtwin's pharmacogenes name (``ingest/data/pharmacogene_positions.csv``,
323 positions of CYP2C19, CYP2C9, VKORC1, CYP4F2, SLCO1B1, TPMT, NUDT15, DPYD and
CYP3A5, written by ``tools/pgx_tables.py``). A whole-genome VCF is streamed once and every
other record is skipped unread: medtwin does not store genomes, only the genotypes its
pharmacogenomic calls use. Each kept position becomes one
:class:`~medtwin.record.facts.Genotype` fact, reference calls (``0/0``) included, since a
reference call is information and an absent position is not.

Rules
-----
* **Genome build**: the CPIC positions are GRCh38. The build is read from the header
  (``##reference``, ``##contig`` ``assembly=`` and ``length=``, chromosome lengths from the
  GRC assembly reports). A file that says GRCh37 (or NCBI36), or whose header contradicts
  itself, is refused with an error naming the file and the header line. A file that does
  not say is read as GRCh38 and its facts carry ``build=None``.
* **Samples**: a single-sample file needs nothing; a multi-sample file is refused unless a
  sample is chosen (``sample=`` / ``medtwin import --patient SAMPLE`` /
  ``medtwin pgx call --sample S``). The patient is the identifier
  ``urn:medtwin:vcf-sample|<sample>`` (link it with ``medtwin link``).
* **Malformed records** (too few columns, a position that is not a number, no ``GT``, an
  allele index beyond ``ALT``, bases that are not bases, a second record at the same
  position) are quarantined with the file, line and field; the rest of the file goes on.
* **Raw array files** (23andMe ``rsid chromosome position genotype``, AncestryDNA
  ``rsid chromosome position allele1 allele2``; the sample is ``--patient`` / ``--sample``,
  else the file name without suffix) are matched by dbSNP id, not by position:
  these files are usually on GRCh37, and an rsid names the same variant on every build.
  Alleles are read on the plus strand (as both companies report them); ``--`` / ``0`` are
  no-calls; insertion/deletion calls (``I``/``D``) cannot be matched to sequence alleles and
  are quarantined.
* **Idempotent**: a fact's source id is ``Genotype/<sample>/<chromosome>:<position>``, so
  importing the same file again changes nothing and a new call at a position is a new version.

>>> from pathlib import Path
>>> VcfReader().can_read(Path("sample.vcf.gz"))
True
>>> detect_build(["##reference=file:///ref/GRCh38_full_analysis_set.fa"])
('GRCh38', '##reference=file:///ref/GRCh38_full_analysis_set.fa')
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO

from medtwin.ingest.base import IngestError, Lookup
from medtwin.record.batch import Batch, QuarantineItem, ResourceUnit
from medtwin.record.facts import Coding, Genotype, Identifier

__all__ = [
    "DBSNP",
    "VCF_SAMPLE_SYSTEM",
    "GenotypeFile",
    "PharmacogenePosition",
    "VariantCall",
    "VcfError",
    "VcfReader",
    "detect_build",
    "genotype_facts",
    "pharmacogene_positions",
    "read_genotype_file",
    "read_raw_snps",
    "read_vcf",
]

VCF_SAMPLE_SYSTEM = "urn:medtwin:vcf-sample"
DBSNP = "http://www.ncbi.nlm.nih.gov/projects/SNP"
DEFAULT_SOURCE = "vcf"
_BASES = re.compile(r"^[ACGTN]+$")


class VcfError(IngestError):
    """A genotype file that cannot be used at all (wrong build, no or ambiguous sample)."""


@dataclass(frozen=True, slots=True)
class PharmacogenePosition:
    """One position an allele definition names (GRCh38, VCF spelling of the alleles)."""

    gene: str
    chromosome: str
    position: int
    rsid: str | None
    ref: str
    alts: tuple[str, ...]


@cache
def pharmacogene_positions() -> dict[tuple[str, int], PharmacogenePosition]:
    """The kept positions, by ``(chromosome, position)``; from ``data/pharmacogene_positions.csv``."""
    text = resources.files("medtwin.ingest").joinpath("data/pharmacogene_positions.csv")
    out: dict[tuple[str, int], PharmacogenePosition] = {}
    with text.open("r", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            site = PharmacogenePosition(
                gene=row["gene"],
                chromosome=row["chromosome"],
                position=int(row["position"]),
                rsid=row["rsid"] or None,
                ref=row["ref"],
                alts=tuple(a for a in row["alts"].split("|") if a),
            )
            out[(site.chromosome, site.position)] = site
    return out


@cache
def _by_rsid() -> dict[str, PharmacogenePosition]:
    return {p.rsid: p for p in pharmacogene_positions().values() if p.rsid}


@dataclass(frozen=True, slots=True)
class VariantCall:
    """A sample's genotype at one position: two alleles as bases (``None``: not called)."""

    chromosome: str
    position: int
    rsid: str | None
    ref: str
    alts: tuple[str, ...]
    alleles: tuple[str | None, str | None]
    phased: bool
    line: int

    @property
    def called(self) -> bool:
        """Both alleles called."""
        return self.alleles[0] is not None and self.alleles[1] is not None

    @property
    def text(self) -> str:
        """``G/A``, ``G|A`` or ``./.``."""
        sep = "|" if self.phased else "/"
        return sep.join(a if a is not None else "." for a in self.alleles)


@dataclass(slots=True)
class GenotypeFile:
    """What a genotype file says about one sample at the pharmacogene positions."""

    path: str
    sample: str
    samples: tuple[str, ...]
    build: str | None
    build_evidence: str | None
    format: str
    calls: dict[tuple[str, int], VariantCall] = field(default_factory=dict)
    problems: list[QuarantineItem] = field(default_factory=list)
    records_read: int = 0


# GRCh38 and GRCh37 primary chromosome lengths (GRC assembly reports GCF_000001405.26 and
# GCF_000001405.13): a ##contig length names the build even when nothing else does.
_CONTIG_LENGTHS: dict[int, str] = {
    **dict.fromkeys(
        (248956422, 242193529, 198295559, 190214555, 181538259, 170805979, 159345973,
         145138636, 138394717, 133797422, 135086622, 133275309, 114364328, 107043718,
         101991189, 90338345, 83257441, 80373285, 58617616, 64444167, 46709983, 50818468,
         156040895),
        "GRCh38",
    ),
    **dict.fromkeys(
        (249250621, 243199373, 198022430, 191154276, 180915260, 171115067, 159138663,
         146364022, 141213431, 135534747, 135006516, 133851895, 115169878, 107349540,
         102531392, 90354753, 81195210, 78077248, 59128983, 63025520, 48129895, 51304566,
         155270560),
        "GRCh37",
    ),
}  # fmt: skip

_BUILD_WORDS = (
    ("GRCh38", ("grch38", "hg38", "hs38", "b38")),
    ("GRCh37", ("grch37", "hg19", "hs37", "b37", "human_g1k_v37", "build 37", "build37")),
    ("NCBI36", ("ncbi36", "hg18", "build 36", "build36")),
)


def _build_of_text(text: str) -> str | None:
    lower = text.lower()
    for build, words in _BUILD_WORDS:
        if any(word in lower for word in words):
            return build
    return None


def detect_build(header: Iterable[str]) -> tuple[str | None, str | None]:
    """The genome build a VCF header states, and the line that says so.

    Looks at ``##reference``, ``##assembly`` and ``##contig`` (``assembly=`` and the
    length of a primary chromosome). Returns ``(None, None)`` when the header does not say.

    Raises
    ------
    VcfError
        When two header lines name different builds.
    """
    found: dict[str, str] = {}
    for line in header:
        if line.startswith(("##reference=", "##assembly=")):
            build = _build_of_text(line)
        elif line.startswith("##contig="):
            build = None
            length = re.search(r"length=(\d+)", line)
            if length:
                build = _CONTIG_LENGTHS.get(int(length.group(1)))
            assembly = re.search(r"assembly=([^,>]+)", line)
            if build is None and assembly:
                build = _build_of_text(assembly.group(1))
        else:
            continue
        if build is not None:
            found.setdefault(build, line.strip())
    if len(found) > 1:
        lines = "; ".join(found.values())
        raise VcfError(f"the header names more than one genome build: {lines}")
    if not found:
        return None, None
    build, line = next(iter(found.items()))
    return build, line


def _open_text(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":  # gzip, including bgzip (a series of gzip members)
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace")


def _chromosome(name: str) -> str:
    return name if name.startswith("chr") else f"chr{name}"


def read_vcf(
    path: Path,
    *,
    sample: str | None = None,
    source: str = DEFAULT_SOURCE,
    keep: Mapping[tuple[str, int], PharmacogenePosition] | None = None,
) -> GenotypeFile:
    """Read one sample's genotypes at the pharmacogene positions of a VCF.

    Parameters
    ----------
    sample
        The sample column to read; required when the file has more than one.
    keep
        Positions to keep (default :func:`pharmacogene_positions`).

    Raises
    ------
    VcfError
        Wrong or contradictory genome build, no sample column, several samples and none
        chosen, a chosen sample that is not in the file, no ``#CHROM`` header line, or a
        gzip/bgzip file cut short or damaged (nothing is read from it).
    """
    try:
        return _read_vcf(path, sample, source, keep)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # gzip raises these for a file cut short (a partial download) or damaged: what was
        # read is not all of the sample's genotypes, and a call from part of them can be wrong
        raise VcfError(
            f"{path}: the compressed file is truncated or corrupt ({exc}); no genotype was "
            "read from it: download or export it again"
        ) from None


def _read_vcf(
    path: Path,
    sample: str | None,
    source: str,
    keep: Mapping[tuple[str, int], PharmacogenePosition] | None,
) -> GenotypeFile:
    wanted = pharmacogene_positions() if keep is None else keep
    by_chrom: dict[str, set[int]] = {}
    for chrom, pos in wanted:
        by_chrom.setdefault(chrom, set()).add(pos)
    header: list[str] = []
    with _open_text(path) as handle:
        columns: list[str] | None = None
        line_no = 0
        for line in handle:
            line_no += 1
            if line.startswith("##"):
                header.append(line)
                continue
            if line.startswith("#CHROM"):
                columns = line.rstrip("\r\n").split("\t")
            break
        if columns is None:
            raise VcfError(f"{path}: not a VCF file (no #CHROM header line)")
        try:
            build, evidence = detect_build(header)
        except VcfError as exc:
            raise VcfError(f"{path}: {exc}") from exc
        if build not in (None, "GRCh38"):
            raise VcfError(
                f"{path}: genome build {build} ({evidence}); medtwin's pharmacogene positions are "
                "GRCh38 (CPIC/PharmCAT allele definitions): lift the file over to GRCh38 first"
            )
        samples = tuple(columns[9:])
        chosen = _choose_sample(path, samples, sample)
        column = 9 + samples.index(chosen)
        result = GenotypeFile(
            path=str(path),
            sample=chosen,
            samples=samples,
            build=build,
            build_evidence=evidence,
            format="vcf",
        )
        for line in handle:
            line_no += 1
            head = line.split("\t", 2)
            if len(head) < 3:
                if line.strip():
                    result.problems.append(
                        _problem(source, path, line_no, None, "fewer than 10 columns", line)
                    )
                continue
            positions = by_chrom.get(_chromosome(head[0]))
            if positions is None:
                continue
            try:
                pos = int(head[1])
            except ValueError:
                result.problems.append(
                    _problem(source, path, line_no, "POS", f"{head[1]!r} is not a number", line)
                )
                continue
            if pos not in positions:
                continue
            result.records_read += 1
            call = _parse_record(line, line_no, column, source, path, result.problems)
            if call is None:
                continue
            key = (call.chromosome, call.position)
            if key in result.calls:
                first = result.calls[key]
                if (first.alleles, first.phased) == (call.alleles, call.phased):
                    continue  # the same call written twice (a split multi-allelic record)
                site = wanted.get(key)
                if site is not None and (first.ref == site.ref) != (call.ref == site.ref):
                    # a SNP record and an indel record share a position (PharmCAT's
                    # preprocessor writes both): the one with the definition's REF counts
                    if call.ref == site.ref:
                        result.calls[key] = call
                    continue
                result.problems.append(
                    _problem(
                        source,
                        path,
                        line_no,
                        "POS",
                        f"a second record at {key[0]}:{key[1]} with another genotype, {call.text} (the first, line "
                        f"{first.line}, {first.text}, is kept)",
                        line,
                    )
                )
                continue
            result.calls[key] = call
    return result


def _choose_sample(path: Path, samples: tuple[str, ...], sample: str | None) -> str:
    if not samples:
        raise VcfError(f"{path}: no sample columns (a sites-only VCF has no genotypes)")
    if sample is not None:
        if sample not in samples:
            raise VcfError(
                f"{path}: no sample {sample!r}; the file has {len(samples)}: "
                + ", ".join(samples[:10])
            )
        return sample
    if len(samples) > 1:
        raise VcfError(
            f"{path}: {len(samples)} samples ({', '.join(samples[:10])}); choose one "
            "(--sample S for 'medtwin pgx call', --patient S for 'medtwin import')"
        )
    return samples[0]


def _problem(
    source: str, path: Path, line: int, column: str | None, reason: str, text: str
) -> QuarantineItem:
    return QuarantineItem(
        source=source,
        reason=reason,
        content=text.rstrip("\r\n"),
        file=str(path),
        location=f"line {line}",
        resource_type="VcfRecord",
        field=column,
    )


def _parse_record(
    line: str, line_no: int, column: int, source: str, path: Path, problems: list[QuarantineItem]
) -> VariantCall | None:
    cells = line.rstrip("\r\n").split("\t")

    def bad(name: str | None, reason: str) -> None:
        problems.append(_problem(source, path, line_no, name, reason, line))

    if len(cells) <= column:
        bad(None, f"{len(cells)} columns; the sample is column {column + 1}")
        return None
    ref = cells[3].upper()
    if not _BASES.match(ref):
        bad("REF", f"{cells[3]!r} is not a sequence of bases")
        return None
    alts = tuple(a.upper() for a in cells[4].split(",")) if cells[4] not in (".", "") else ()
    if any(a != "*" and not _BASES.match(a) for a in alts):
        bad("ALT", f"{cells[4]!r}: an alternate allele is not a sequence of bases")
        return None
    keys = cells[8].split(":")
    if "GT" not in keys:
        bad("FORMAT", f"no GT in FORMAT {cells[8]!r}")
        return None
    values = cells[column].split(":")
    index = keys.index("GT")
    gt = values[index] if index < len(values) else "."
    phased = "|" in gt
    parts = re.split(r"[/|]", gt)
    if len(parts) == 1:  # haploid call: one copy (chrX in males); read as homozygous
        parts = parts * 2
    if len(parts) != 2:
        bad("GT", f"genotype {gt!r} is not diploid")
        return None
    choices = (ref, *alts)
    alleles: list[str | None] = []
    for part in parts:
        if part == ".":
            alleles.append(None)
            continue
        if not part.isdigit() or int(part) >= len(choices):
            bad("GT", f"allele {part!r} of {gt!r} is not REF or one of {len(alts)} ALT alleles")
            return None
        alleles.append(choices[int(part)])
    rsid = cells[2] if cells[2].startswith("rs") else None
    return VariantCall(
        chromosome=_chromosome(cells[0]),
        position=int(cells[1]),
        rsid=rsid,
        ref=ref,
        alts=alts,
        alleles=(alleles[0], alleles[1]),
        phased=phased,
        line=line_no,
    )


def read_raw_snps(path: Path, *, source: str = DEFAULT_SOURCE) -> GenotypeFile:
    """Read a 23andMe or AncestryDNA raw data file at the pharmacogene rsids.

    The sample is the file name without suffix. Calls are keyed by the GRCh38 position of
    the rsid in medtwin's table (see the module docstring).

    Raises
    ------
    VcfError
        When the file is neither format.
    """
    sites = _by_rsid()
    header: list[str] = []
    result: GenotypeFile | None = None
    layout = ""
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.startswith("#") or line.lower().startswith("rsid\t"):
                header.append(line)
                if line.startswith("#AncestryDNA") or line.lower().startswith(
                    "rsid\tchromosome\tposition\tallele1"
                ):
                    layout = "ancestrydna"
                elif "23andme" in line.lower() or line.startswith("# rsid\tchromosome"):
                    layout = layout or "23andme"
                continue
            if result is None:
                if not layout:
                    raise VcfError(
                        f"{path}: not a 23andMe or AncestryDNA raw data file (no header naming "
                        "the columns rsid, chromosome, position, genotype)"
                    )
                text = " ".join(header)
                result = GenotypeFile(
                    path=str(path),
                    sample=path.name.split(".")[0],
                    samples=(path.name.split(".")[0],),
                    build=_build_of_text(text),
                    build_evidence=next((h.strip() for h in header if "build" in h.lower()), None),
                    format=layout,
                )
            if not line.strip():
                continue
            cells = line.rstrip("\r\n").split("\t")
            expected = 5 if layout == "ancestrydna" else 4
            if len(cells) < expected:
                result.problems.append(
                    _problem(
                        source,
                        path,
                        line_no,
                        None,
                        f"{len(cells)} columns, expected {expected}",
                        line,
                    )
                )
                continue
            rsid = cells[0]
            result.records_read += 1
            bad_place = None
            if cells[1] in ("", "--", "0") or not cells[1].strip():
                bad_place = ("chromosome", f"{cells[1]!r} is not a chromosome")
            elif not cells[2].isdigit():
                bad_place = ("position", f"{cells[2]!r} is not a position")
            site = sites.get(rsid)
            if bad_place is not None:
                if site is not None:
                    result.problems.append(_problem(source, path, line_no, *bad_place, line))
                continue
            if site is None:
                continue
            raw = cells[3] + cells[4] if layout == "ancestrydna" else cells[3]
            alleles = _raw_alleles(raw)
            if isinstance(alleles, str):
                result.problems.append(_problem(source, path, line_no, "genotype", alleles, line))
                continue
            result.calls[(site.chromosome, site.position)] = VariantCall(
                chromosome=site.chromosome,
                position=site.position,
                rsid=rsid,
                ref=site.ref,
                alts=site.alts,
                alleles=alleles,
                phased=False,
                line=line_no,
            )
    if result is None:
        if not layout:
            raise VcfError(f"{path}: not a 23andMe or AncestryDNA raw data file")
        name = path.name.split(".")[0]
        result = GenotypeFile(str(path), name, (name,), None, None, layout)
    return result


def _raw_alleles(raw: str) -> tuple[str | None, str | None] | str:
    text = raw.strip().upper()
    if text in ("--", "00", "0", "-", ""):
        return (None, None)
    if any(c in "ID" for c in text):
        return f"insertion/deletion call {raw!r} cannot be matched to the sequence alleles"
    if len(text) == 1:
        text *= 2  # haploid call (X, Y, MT)
    if len(text) != 2 or any(c not in "ACGT" for c in text):
        return f"{raw!r} is not a genotype of two bases"
    return (text[0], text[1])


def _is_raw_snps(path: Path) -> bool:
    try:
        with _open_text(path) as handle:
            first = handle.readline(4096)
    except OSError:
        return False
    return first.startswith(("# This data file generated by 23andMe", "#AncestryDNA", "# 23andMe"))


def read_genotype_file(
    path: Path, *, sample: str | None = None, source: str = DEFAULT_SOURCE
) -> GenotypeFile:
    """A VCF or a raw array file, by its first line.

    ``sample`` chooses a VCF sample column; for a raw array file (which names no sample) it is
    the sample name to use instead of the file name.
    """
    if _is_raw_snps(path):
        result = read_raw_snps(path, source=source)
        if sample is not None:  # a raw file names no sample: the caller's name is used
            result.sample = sample
            result.samples = (sample,)
        return result
    return read_vcf(path, sample=sample, source=source)


def genotype_facts(result: GenotypeFile, *, source: str = DEFAULT_SOURCE) -> list[Genotype]:
    """One :class:`Genotype` fact per kept position, in position order."""
    sites = pharmacogene_positions()
    subject = Identifier(VCF_SAMPLE_SYSTEM, result.sample)
    facts = []
    for key in sorted(result.calls):
        call = result.calls[key]
        site = sites.get(key)
        rsid = call.rsid or (site.rsid if site else None)
        facts.append(
            Genotype(
                source=source,
                source_id=f"Genotype/{result.sample}/{call.chromosome}:{call.position}",
                subject=subject,
                code=Coding(DBSNP, rsid, site.gene if site else None) if rsid else None,
                status="final",
                resource_type="Genotype",
                gene=site.gene if site else None,
                variant=rsid,
                genotype=call.text,
                chromosome=call.chromosome,
                position=call.position,
                ref=call.ref,
                alt=call.alts,
                phased=call.phased,
                build=result.build if result.format == "vcf" else "GRCh38",
                sample=result.sample,
            )
        )
    return facts


class VcfReader:
    """``medtwin import`` of ``.vcf``, ``.vcf.gz``, ``.vcf.bgz`` and 23andMe/AncestryDNA ``.txt`` files."""

    name = "vcf"

    def can_read(self, path: Path) -> bool:
        """By name (``.vcf``, ``.vcf.gz``, ``.vcf.bgz``), or a raw file's first line."""
        name = path.name.lower()
        if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
            return True
        return name.endswith(".txt") and path.is_file() and _is_raw_snps(path)

    def read(
        self,
        path: Path,
        *,
        source: str | None,
        tz: str,
        lookup: Lookup | None = None,
        patient: str | None = None,
    ) -> Iterator[Batch]:
        """One batch: the sample's genotypes as one unit, malformed records quarantined.

        ``patient`` chooses the sample of a multi-sample VCF. A file that cannot be used
        (wrong build, several samples and none chosen) is quarantined whole, with the
        reason and its header as content.
        """
        name = source or DEFAULT_SOURCE
        batch = Batch(source=name, file=str(path))
        try:
            result = read_genotype_file(path, sample=patient, source=name)
        except VcfError as exc:
            batch.quarantine.append(
                QuarantineItem(
                    source=name,
                    reason=str(exc),
                    content=_header_text(path),
                    file=str(path),
                    location="file",
                    resource_type="VcfFile",
                    field="header",
                )
            )
            yield batch
            return
        batch.resources_read = result.records_read
        batch.quarantine.extend(result.problems)
        facts = genotype_facts(result, source=name)
        if facts:
            batch.units.append(
                ResourceUnit(
                    key=f"Sample/{result.sample}",
                    facts=tuple(facts),
                    file=str(path),
                    location=f"sample {result.sample}",
                    content="\n".join(
                        f"{f.chromosome}\t{f.position}\t{f.variant or '.'}\t{f.genotype}"
                        for f in facts
                    ),
                )
            )
        yield batch


def _header_text(path: Path, limit: int = 200) -> str:
    lines: list[str] = []
    try:
        with _open_text(path) as handle:
            for line in handle:
                if not line.startswith("#") or len(lines) >= limit:
                    break
                lines.append(line.rstrip("\r\n"))
    except OSError:
        return ""
    return "\n".join(lines)
