"""Genotype import: VCF (plain, bgzip), 23andMe / AncestryDNA raw files, bad input, the store."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner

from medtwin.cli import main
from medtwin.ingest import import_paths, retry_quarantine
from medtwin.ingest.vcf import (
    VCF_SAMPLE_SYSTEM,
    PharmacogenePosition,
    VcfError,
    VcfReader,
    detect_build,
    genotype_facts,
    pharmacogene_positions,
    read_genotype_file,
    read_raw_snps,
    read_vcf,
)
from medtwin.record.facts import Demographics, Genotype, Identifier, fact_from_dict, fact_to_dict
from medtwin.store import open_store

HEADER = "##fileformat=VCFv4.2\n"
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{samples}\n"
# CYP2C19 *2 (rs4244285 G>A) and *17 (rs12248560 C>T), GRCh38
STAR2 = "chr10\t94781859\trs4244285\tG\tA\t.\tPASS\t.\tGT\t{gt}\n"
STAR17 = "chr10\t94761900\trs12248560\tC\tT\t.\tPASS\t.\tGT\t{gt}\n"


def _write(tmp_path: Path, text: str, name: str = "s.vcf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _vcf(tmp_path: Path, body: str, header: str = HEADER, samples: str = "S1") -> Path:
    return _write(tmp_path, header + COLUMNS.format(samples=samples) + body)


def test_build_is_read_from_reference_contig_assembly_and_length() -> None:
    assert detect_build(["##reference=hg38\n"])[0] == "GRCh38"
    assert detect_build(["##contig=<ID=chr1,length=248956422>\n"])[0] == "GRCh38"
    assert detect_build(['##contig=<ID=chr1,assembly=GRCh38.p14,species="Homo sapiens">'])[0] == (
        "GRCh38"
    )
    assert detect_build(["##contig=<ID=1,length=249250621>\n"])[0] == "GRCh37"
    assert detect_build(["##reference=file:///ref/hs37d5.fa\n"])[0] == "GRCh37"
    assert detect_build(["##source=caller\n"]) == (None, None)
    with pytest.raises(VcfError, match="more than one genome build"):
        detect_build(["##reference=hg19\n", "##contig=<ID=chr1,length=248956422>\n"])


def test_grch37_is_refused_with_the_file_and_the_line(tmp_path: Path) -> None:
    path = _vcf(tmp_path, STAR2.format(gt="0/1"), HEADER + "##reference=GRCh37.p13\n")
    with pytest.raises(VcfError) as info:
        read_vcf(path)
    message = str(info.value)
    assert str(path) in message and "GRCh37" in message and "##reference=GRCh37.p13" in message
    contig = _vcf(tmp_path, STAR2.format(gt="0/1"), HEADER + "##contig=<ID=1,length=249250621>\n")
    with pytest.raises(VcfError, match="lift the file over to GRCh38"):
        read_vcf(contig)


def test_samples_single_multi_chosen_unknown_none(tmp_path: Path) -> None:
    one = read_vcf(_vcf(tmp_path, STAR2.format(gt="0/1")))
    assert one.sample == "S1" and one.build is None
    multi = _vcf(tmp_path, STAR2.format(gt="0/1\t1/1"), samples="A\tB")
    with pytest.raises(VcfError, match=r"2 samples \(A, B\); choose one"):
        read_vcf(multi)
    chosen = read_vcf(multi, sample="B")
    assert chosen.calls[("chr10", 94781859)].alleles == ("A", "A")
    with pytest.raises(VcfError, match="no sample 'C'"):
        read_vcf(multi, sample="C")
    sites_only = _write(tmp_path, HEADER + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with pytest.raises(VcfError, match="no sample columns"):
        read_vcf(sites_only)
    with pytest.raises(VcfError, match="no #CHROM"):
        read_vcf(_write(tmp_path, "hello\n", "x.vcf"))


def test_malformed_records_are_quarantined_with_line_and_field(tmp_path: Path) -> None:
    body = (
        STAR17.format(gt="0/1")
        + "chr10\tnot-a-number\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n"  # line 4
        + STAR2.format(gt="0/3")  # line 5: allele 3 of one ALT
        + STAR2.replace("\tGT\t", "\tDP\t").format(gt="12")  # line 6: no GT
        + "chr10\t94775367\trs12769205\tA\tG\n"  # line 7: too few columns
        + "chr10\t94842866\trs3758581\tX\tG\t.\tPASS\t.\tGT\t0/1\n"  # line 8: bad REF
        + "chr10\t94762706\trs28399504\tA\tG\t.\tPASS\t.\tGT\t0/1\n"  # line 9: fine
        + "chr10\t94762706\trs28399504\tA\tG\t.\tPASS\t.\tGT\t1/1\n"  # line 10: clash
    )
    result = read_vcf(_vcf(tmp_path, body))
    where = {(p.location, p.field) for p in result.problems}
    assert where == {
        ("line 4", "POS"),
        ("line 5", "GT"),
        ("line 6", "FORMAT"),
        ("line 7", None),
        ("line 8", "REF"),
        ("line 10", "POS"),
    }
    assert all(p.file == str(tmp_path / "s.vcf") for p in result.problems)
    assert set(result.calls) == {("chr10", 94761900), ("chr10", 94762706)}


def test_only_pharmacogene_positions_are_kept(shared: Path) -> None:
    """The chr10 panel of three 1000 Genomes samples: 88,248 records, 46 kept."""
    path = shared / "genomics" / "PharmCAT_tutorial_get-rm_wgs_30x_grch38_chr10.vcf.bgz"
    result = read_vcf(path, sample="NA18565")
    assert result.build == "GRCh38"
    positions = pharmacogene_positions()
    assert result.calls and all(key in positions for key in result.calls)
    assert len(result.calls) < 100
    facts = genotype_facts(result)
    assert {f.gene for f in facts} <= {"CYP2C19", "CYP2C9"}
    assert all(f.subject == Identifier(VCF_SAMPLE_SYSTEM, "NA18565") for f in facts)


def test_plain_and_gzip_give_the_same_facts(tmp_path: Path) -> None:
    text = HEADER + COLUMNS.format(samples="S1") + STAR2.format(gt="0|1")
    plain = _write(tmp_path, text)
    packed = tmp_path / "s.vcf.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    a, b = genotype_facts(read_vcf(plain)), genotype_facts(read_vcf(packed))
    assert a == b and a[0].genotype == "G|A" and a[0].phased


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_a_truncated_or_damaged_bgzip_file_gives_no_genotype(
    shared: Path, tmp_path: Path, damage: str
) -> None:
    """A partial download of the chr22 panel ended in click's bare "Aborted!" (gzip's EOFError),
    for 'pgx call' and 'import' alike, with nothing quarantined. A call from part of a file can
    be wrong (the variant may lie in the missing part): nothing is read, and it says why."""
    data = (
        shared / "genomics" / "PharmCAT_tutorial_get-rm_wgs_30x_grch38_chr22.vcf.bgz"
    ).read_bytes()
    if damage == "cut":
        data = data[:100_000]
    else:
        body = bytearray(data)
        body[50_000:50_016] = bytes(16)
        data = bytes(body)
    path = tmp_path / "panel.vcf.bgz"
    path.write_bytes(data)
    with pytest.raises(VcfError, match=r"the compressed file is truncated or corrupt \("):
        read_vcf(path, sample="NA18526")
    store = open_store(str(tmp_path / "s.db"), actor="test")
    report = import_paths(store, [path], patient="NA18526")
    assert report.counts.get("inserted", 0) == 0
    [entry] = store.quarantine()
    assert "no genotype was read from it" in entry.item.reason and entry.item.location == "file"
    result = CliRunner().invoke(main, ["pgx", "call", str(path), "--sample", "NA18526"])
    assert result.exit_code == 1 and "Aborted" not in result.output
    assert "the compressed file is truncated or corrupt" in result.output


def test_genotype_fact_round_trips() -> None:
    fact = genotype_facts(
        read_vcf_text("chr10\t94781859\trs4244285\tG\tA,C\t.\tPASS\t.\tGT\t1/2\n")
    )[0]
    assert fact.alt == ("A", "C") and fact.genotype == "A/C" and fact.gene == "CYP2C19"
    assert fact_from_dict(fact_to_dict(fact)) == fact


def read_vcf_text(body: str) -> object:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return read_vcf(_vcf(Path(folder), body))


def test_snps_test_vcf_edge_cases(shared: Path) -> None:
    """The snps package's parser test VCF: half calls, multi-allelic, REF '.'."""
    path = shared / "genomics" / "snps" / "snps_testvcf.vcf"
    keep = {
        ("chr1", p): PharmacogenePosition("X", "chr1", p, None, "N", ()) for p in range(101, 118)
    }
    result = read_vcf(path, keep=keep)
    calls = {key[1]: call for key, call in result.calls.items()}
    assert calls[101].alleles == ("A", "A")
    assert calls[105].alleles == (None, None)  # ./.
    assert calls[107].alleles == ("T", "C")  # 1/2 of T,C
    assert calls[110].alleles == ("A", "AGC")  # insertion
    assert calls[116].alleles == ("A", None)  # 0/.
    assert calls[103].phased
    # REF "." (rs2, rs12, rs13); an ALT allele called where ALT is "." (rs14, rs15)
    assert {(p.location, p.field) for p in result.problems} == {
        ("line 8", "REF"),
        ("line 18", "REF"),
        ("line 19", "REF"),
        ("line 20", "GT"),
        ("line 21", "GT"),
    }


def test_23andme_and_ancestry_files(shared: Path, tmp_path: Path) -> None:
    for name, layout, read in (
        ("snps_23andme.txt", "23andme", 10),
        ("snps_ancestry.txt", "ancestrydna", 8),
    ):
        result = read_raw_snps(shared / "genomics" / "snps" / name)
        assert result.format == layout and result.records_read >= read
        assert not result.calls  # the test files hold no pharmacogene rsids
    raw = _write(
        tmp_path,
        "# This data file generated by 23andMe at: Mon Jan 01 2024\n"
        "# ... human assembly build 37 (also known as Annotation Release 104)\n"
        "# rsid\tchromosome\tposition\tgenotype\n"
        "rs4244285\t10\t96541616\tAG\n"
        "rs12248560\t10\t96521657\t--\n"
        "rs28399504\t10\t96522463\tDI\n"
        "rs3758581\t10\t96602622\tGG\n",
        "genome_Jane.txt",
    )
    assert VcfReader().can_read(raw)
    result = read_raw_snps(raw)
    assert result.sample == "genome_Jane" and result.build == "GRCh37"
    assert result.calls[("chr10", 94781859)].alleles == ("A", "G")  # GRCh38 position by rsid
    assert result.calls[("chr10", 94761900)].alleles == (None, None)
    assert [(p.location, p.field) for p in result.problems] == [("line 6", "genotype")]
    facts = genotype_facts(result)
    assert all(f.build == "GRCh38" for f in facts)
    named = read_genotype_file(raw, sample="MRN-7")
    assert named.sample == "MRN-7" and genotype_facts(named)[0].subject == Identifier(
        VCF_SAMPLE_SYSTEM, "MRN-7"
    )


def test_import_is_idempotent_and_waits_for_the_patient(tmp_path: Path, shared: Path) -> None:
    from medtwin.store import open_store

    source = shared / "genomics" / "NA18526.preprocessed.vcf"
    store = open_store(str(tmp_path / "m.db"))
    first = import_paths(store, [source], workers=0)
    # no patient has the sample identifier yet: the sample's genotypes wait in quarantine
    assert first.counts.get("quarantined", 0) == 1 and not first.counts.get("inserted")
    ident = Identifier(VCF_SAMPLE_SYSTEM, "NA18526")
    store.append_facts(
        [Demographics(source="t", source_id="Patient/1", subject=ident, identifiers=(ident,))],
        source="t",
    )
    retried = retry_quarantine(store)
    assert retried.counts["inserted"] > 100
    again = import_paths(store, [source], workers=0)
    assert (
        again.counts.get("inserted", 0) == 0
        and again.counts["unchanged"] == retried.counts["inserted"]
    )
    stored = store.timeline(store.resolve_patient("NA18526"), kinds=["Genotype"])
    assert all(isinstance(s.fact, Genotype) for s in stored)
    store.close()
    result = CliRunner().invoke(
        main, ["pgx", "call", "--patient", "NA18526", "--store", str(tmp_path / "m.db"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert '"diplotype": "*1/*15"' in result.output  # SLCO1B1, as from the file


def test_cli_refuses_bad_input_with_one_line(tmp_path: Path, shared: Path) -> None:
    runner = CliRunner()
    panel = shared / "genomics" / "PharmCAT_tutorial_get-rm_wgs_30x_grch38_chr10.vcf.bgz"
    result = runner.invoke(main, ["pgx", "call", str(panel)])
    assert result.exit_code == 1 and "3 samples" in result.output
    wrong = _vcf(tmp_path, STAR2.format(gt="0/1"), HEADER + "##reference=hg19\n")
    result = runner.invoke(main, ["pgx", "call", str(wrong), "--json"])
    assert result.exit_code == 1 and "GRCh37" in result.output
    result = runner.invoke(
        main, ["pgx", "call", str(panel), "--sample", "NA18526", "--gene", "CYP2C19", "--json"]
    )
    assert result.exit_code == 0 and '"diplotype": "*1/*1"' in result.output
