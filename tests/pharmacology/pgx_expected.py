"""Expected calls for PharmCAT's haplotype test VCFs (shared/data/genomics/pharmcat/haplotype-tests).

Each entry: file -> (expected diplotypes, how the expectation was set, note). The kinds:

* ``name``: the diplotype the file name states, in today's CPIC nomenclature (CYP2C19 *4A/*4B
  merged into *4 in the 2022 PharmVar/CPIC update; TPMT *1S is *1; SLCO1B1 *1A is *1);
* ``pharmcat``: PharmCAT's own expected output for this genotype in its test suite
  (PharmCATTest.java / NamedAlleleMatcher*Test.java, PharmGKB/PharmCAT on GitHub);
* ``decided``: an edge-case file whose name states no diplotype: the answer medtwin gives,
  with the reason;
* ``exception``: the file name (written for older definitions) and the 2025-11 CPIC
  definitions disagree; the reason is the note. docs/models/pgx.md lists these.

Several diplotypes mean an ambiguous call: every one fits with the same top score.
"""

from __future__ import annotations

NOT_CALLED: tuple[str, ...] = ()

HAPLOTYPE_TESTS: dict[str, tuple[tuple[str, ...], str, str]] = {
    # DPYD: the two lowest-activity variants decide (CPIC DPYD 2017, PharmCAT DPYD exception)
    "DPYD/c1129-5923c2846.vcf": (("c.1129-5923C>G/c.2846A>T",), "name", ""),
    "DPYD/c1156het.vcf": (
        ("Reference/c.1156G>T (*12)",),
        "pharmcat",
        "PharmCATTest testDpydS12het",
    ),
    "DPYD/c1679c1156.vcf": (("c.1156G>T (*12)/c.1679T>G (*13)",), "name", ""),
    "DPYD/c2846het.vcf": (("Reference/c.2846A>T",), "pharmcat", "PharmCATTest testDpydC2846het"),
    "DPYD/c557c703.vcf": (("c.557A>G/c.703C>T (*8)",), "name", ""),
    "DPYD/novariant.vcf": (
        ("Reference/Reference",),
        "decided",
        "no DPYD variant: two reference alleles",
    ),
    "DPYD/s1s2b.vcf": (
        ("c.1627A>G (*5)/c.1905+1G>A (*2A)",),
        "pharmcat",
        "PharmCATTest testDpydS1S2B",
    ),
    "NUDT15/refref.vcf": (("*1/*1",), "name", ""),
    "NUDT15/s2ref.vcf": (("*1/*2",), "name", ""),
    "NUDT15/s3ref.vcf": (("*1/*3",), "name", ""),
    "SLCO1B1/SLCO1B1_s14_s19_t1.vcf": (
        ("*4/*20", "*14/*19"),
        "name",
        "unphased: *14/*19 and *4/*20 have the same variants and the same score",
    ),
    "SLCO1B1/SLCO1B1_s15_s45_t1.vcf": (
        ("*1/*45",),
        "exception",
        "*45 is now defined with sub-allele *45.002 = c.388A>G + c.521T>C + rs71581941, the *15 "
        "variants plus one: with unphased calls *1/*45 is the most specific explanation "
        "(top score), not *15/*45",
    ),
    "SLCO1B1/SLCO1B1_s19_s37_t1.vcf": (
        ("*1/*20",),
        "exception",
        "*20 = the *19 and *37 variants on one haplotype: unphased, *1/*20 outscores *19/*37",
    ),
    "SLCO1B1/SLCO1B1_s1_s14_t1.vcf": (("*1/*14",), "name", ""),
    "SLCO1B1/SLCO1B1_s1_s15_t1.vcf": (("*1/*15",), "name", ""),
    "SLCO1B1/SLCO1B1_s1_s25_t1.vcf": (("*1/*25",), "name", ""),
    "SLCO1B1/SLCO1B1_s37_s40_t1.vcf": (
        ("*5/*20", "*15/*19", "*37/*40", "*40/*52", "*40/*56", "*40/*57"),
        "name",
        "unphased: six pairs of today's alleles carry the same three variants",
    ),
    "SLCO1B1/SLCO1B1_s5_s14_t1.vcf": (
        ("*4/*15", "*5/*14"),
        "name",
        "unphased: *5/*14 and *4/*15 carry the same variants",
    ),
    "SLCO1B1/multi.vcf": (NOT_CALLED, "pharmcat", "PharmCATTest testSlco1b1TestMulti: not called"),
    "SLCO1B1/s1as15s1bs5missing.vcf": (
        ("*1/*15",),
        "name",
        "*1A/*15 (or *1B/*5, *1B now *37) with one position missing: *1/*15 scores highest",
    ),
    "SLCO1B1/s1as15s1bs5twomissing.vcf": (("*1/*15",), "name", "as above, two positions missing"),
    "SLCO1B1/s1s1.vcf": (("*1/*1",), "name", ""),
    "SLCO1B1/s1s15.vcf": (("*1/*15",), "pharmcat", "PharmCATTest testSlco1b1Test3"),
    "SLCO1B1/s1s44.vcf": (("*1/*44",), "name", ""),
    "SLCO1B1/s2s2.vcf": (("*2/*2",), "name", ""),
    "SLCO1B1/s5s15.vcf": (("*5/*15",), "pharmcat", "PharmCATTest testSlco1b1HomVar"),
    "SLCO1B1/s5s45.vcf": (("*5/*45",), "pharmcat", "PharmCATTest testSlco1b1Test4"),
    "TPMT/het3a.vcf": (("*1/*3A",), "name", ""),
    "TPMT/hom1s_het3a.vcf": (("*1/*3A",), "name", "*1S is *1 today"),
    "TPMT/s15offdata.vcf": (
        NOT_CALLED,
        "decided",
        "the *15 position carries an allele no definition has (an indel): not called",
    ),
    "TPMT/s16s22.vcf": (("*16/*22",), "name", ""),
    "TPMT/s1s1.vcf": (("*1/*1",), "name", ""),
    "TPMT/s1s1s.vcf": (("*1/*1",), "name", "*1/*1S: *1S is *1 today"),
    "TPMT/s1ss1ss3.vcf": (("*1/*3A",), "pharmcat", "PharmCATTest testTpmtStar1s"),
    "TPMT/s3as3b.vcf": (("*3A/*3B",), "name", ""),
    "TPMT/s3bs3c.vcf": (
        ("*1/*3A",),
        "exception",
        "unphased *3B + *3C heterozygotes are the *3A genotype: *1/*3A outscores *3B/*3C "
        "(CPIC notes *3A is by far the more common reading; phased data would tell)",
    ),
    "TPMT/unexpected.allele.vcf": (
        NOT_CALLED,
        "exception",
        "rs72552740 carries T, which no definition has: medtwin does not call; PharmCAT treats "
        "undocumented variants of some genes as reference and would report *1/*1 with a warning",
    ),
    "TPMT/unexpected.allele.with.s9.vcf": (
        NOT_CALLED,
        "exception",
        "as above; PharmCAT would report *1/*9 with a warning",
    ),
    "VKORC1/-1639A-1639A.vcf": (("rs9923231 variant (T)/rs9923231 variant (T)",), "name", ""),
    "VKORC1/-1639G-1639A.vcf": (
        ("rs9923231 reference (C)/rs9923231 variant (T)",),
        "name",
        "",
    ),
    "VKORC1/-1639G-1639G.vcf": (
        ("rs9923231 reference (C)/rs9923231 reference (C)",),
        "name",
        "",
    ),
    "cyp2c19/noCall.vcf": (NOT_CALLED, "pharmcat", "PharmCATTest testCyp2c19noCall"),
    "cyp2c19/rs12769205call.vcf": (
        ("*1/*35",),
        "exception",
        "PharmCAT's old test expected *27/*35; *27 is no longer a CPIC CYP2C19 allele",
    ),
    "cyp2c19/rs12769205missingrs4244285het.vcf": (
        ("*1/*2",),
        "pharmcat",
        "NamedAlleleMatcherCyp2c19Test",
    ),
    "cyp2c19/rs12769205only.vcf": (
        ("*1/*2", "*1/*35", "*2/*38", "*35/*38"),
        "decided",
        "only rs12769205 is in the file: every allele carrying it fits",
    ),
    "cyp2c19/rs12769205ref.vcf": (
        ("*1/*35", "*35/*38"),
        "decided",
        "rs3758581 (which separates *1 from *38) is missing",
    ),
    "cyp2c19/s15s28.vcf": (("*15/*28", "*28/*39"), "name", "rs3758581 missing: *15 or *39"),
    "cyp2c19/s1s1.vcf": (("*1/*1",), "name", ""),
    "cyp2c19/s1s17.vcf": (("*1/*17", "*17/*38"), "name", "rs3758581 missing: *1 or *38"),
    "cyp2c19/s1s17s1s4bmissing.vcf": (
        ("*1/*17",),
        "exception",
        "NamedAlleleMatcherCyp2c19Test expected *1/*17 or *1/*4B; *4 now has Y (C or T) at "
        "rs12248560, which scores nothing, so *1/*17 alone has the top score",
    ),
    "cyp2c19/s1s17s1s4bmissingmore.vcf": (("*1/*17",), "exception", "as above"),
    "cyp2c19/s1s1rs12248560missing.vcf": (("*1/*1",), "pharmcat", "NamedAlleleMatcherCyp2c19Test"),
    "cyp2c19/s1s2.vcf": (("*1/*2",), "name", ""),
    "cyp2c19/s1s28.vcf": (("*1/*28",), "name", ""),
    "cyp2c19/s1s2rs3758581missing.vcf": (("*1/*2", "*2/*38"), "name", "rs3758581 missing"),
    "cyp2c19/s1s2rs3758581missingRs58973490het.vcf": (("*1/*2",), "name", ""),
    "cyp2c19/s1s2rs58973490het.vcf": (("*1/*2",), "pharmcat", "PharmCATTest"),
    "cyp2c19/s1s35.vcf": (("*1/*35", "*35/*38"), "name", "rs3758581 missing"),
    "cyp2c19/s1s4b.vcf": (("*1/*4",), "name", "*4B is *4 today"),
    "cyp2c19/s1s4s17.vcf": (("*1/*4",), "name", "*4 carries the *17 variant"),
    "cyp2c19/s2s2.vcf": (("*2/*2",), "name", ""),
    "cyp2c19/s2s3.vcf": (("*2/*3",), "name", ""),
    "cyp2c19/s4as4b.vcf": (("*4/*4",), "name", "*4A and *4B are *4 today"),
    "cyp2c19/s4bs17.vcf": (("*4/*17",), "name", ""),
    "cyp2c19/s4bs17rs28399504missing.vcf": (
        ("*17/*17",),
        "exception",
        "PharmCATTest expects *4/*4, *4/*17 or *17/*17; with *4's Y at rs12248560 scoring "
        "nothing (PharmCAT v3.1's score, see pgx.md) *17/*17 alone has the top score",
    ),
    "cyp2c19/s4s17het.vcf": (("*4/*17",), "pharmcat", "PharmCATTest testCyp2c19s1s4het"),
    "cyp2c19/s4s17missingS1.vcf": (
        ("*1/*4", "*4/*38"),
        "pharmcat",
        "PharmCATTest testCyp2c19s1s4missingS1",
    ),
    "cyp2c19/sUnks17.vcf": (NOT_CALLED, "pharmcat", "NamedAlleleMatcherCyp2c19Test: no match"),
    "cyp2c9/s1s1.vcf": (("*1/*1",), "name", ""),
    "cyp2c9/s1s61.vcf": (("*1/*61",), "name", ""),
    "cyp2c9/s24s24.vcf": (("*24/*24",), "name", ""),
    "cyp2c9/s24s2pluss24.vcf": (
        NOT_CALLED,
        "decided",
        "one haplotype carries *2 and *24 together, which no definition names: not called "
        "(medtwin does not call combinations)",
    ),
    "cyp2c9/s2s24.vcf": (("*2/*24",), "name", ""),
    "cyp2c9/s2s24only.vcf": (NOT_CALLED, "decided", "the same genotypes as s24s2pluss24"),
    "cyp2c9/s2s25.vcf": (("*2/*25",), "name", ""),
    "cyp2c9/s2s3.vcf": (("*2/*3",), "name", ""),
    "cyp2c9/s3s18m94981296.vcf": (
        ("*1/*18",),
        "decided",
        "the *3 position 94981296 is missing, so only *18's second variant is seen",
    ),
    "cyp3a5/s1s1.vcf": (("*1/*1",), "name", ""),
    "cyp3a5/s1s1rs776746missing.vcf": (("*1/*1",), "name", ""),
    "cyp3a5/s1s3rs776746rs28383479het.vcf": (
        ("*3/*9",),
        "exception",
        "PharmCAT once gave *3 a Y at rs28383479 (its gene-definition exceptions) and called "
        "*1/*3; today's CPIC *3 is rs776746 alone, and rs28383479 T is *9: the same genotypes "
        "as s3s9.vcf",
    ),
    "cyp3a5/s1s3rs776746rs55965422het.vcf": (
        ("*1/*3",),
        "name",
        "rs55965422 (*5) is no longer in the CPIC CYP3A5 definitions",
    ),
    "cyp3a5/s1s3rs776746rs55965422rs28383479het.vcf": (
        ("*3/*9",),
        "exception",
        "as s1s3rs776746rs28383479het",
    ),
    "cyp3a5/s1s7.vcf": (("*1/*7",), "name", ""),
    "cyp3a5/s1s7missing.vcf": (("*1/*1",), "decided", "the *7 position is missing"),
    "cyp3a5/s3s3rs55965422het.vcf": (("*3/*3",), "name", ""),
    "cyp3a5/s3s5-homozygous.vcf": (
        ("*1/*3",),
        "exception",
        "*5 (rs55965422) is no longer in the CPIC CYP3A5 definitions",
    ),
    "cyp3a5/s3s9-homozygous.vcf": (("*3/*9",), "name", ""),
    "cyp3a5/s3s9.vcf": (("*3/*9",), "name", "phased"),
    "cyp4f2/s1s1.vcf": (("*1/*1",), "name", ""),
}
