"""harvester.text.normalize: identifiers, markup, dates, pages and names.

The inline strings are shaped like what the APIs send (the PubMed fixtures in ../shared
hold the real ones; tests/test_pubmed_parse.py runs those end to end).
"""

from __future__ import annotations

import json
import time

import pytest

from harvester.dedup.features import fold
from harvester.query.syntax import parse_query
from harvester.records import Record
from harvester.text.fields import (
    language_code,
    month_number,
    normalize_pages,
    parse_medline_date,
    partial_date,
    split_name,
)
from harvester.text.fold import collapse_whitespace
from harvester.text.identifiers import (
    normalize_arxiv,
    normalize_doi,
    normalize_orcid,
    normalize_pmcid,
    normalize_pmid,
)
from harvester.text.markup import (
    markup_sections,
    markup_to_text,
    strip_markup,
    subscript,
    superscript,
)
from tests.conftest import require_shared


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.1515/cclm-2024-0070", "10.1515/cclm-2024-0070"),
        ("https://doi.org/10.1177/0739456X21995890", "10.1177/0739456x21995890"),
        ("http://dx.doi.org/10.1117/1.JMI.5.2.026002", "10.1117/1.jmi.5.2.026002"),
        ("doi.org/10.1055/a-2189-0166", "10.1055/a-2189-0166"),
        ("doi:10.1055/a-2189-0166", "10.1055/a-2189-0166"),
        ("DOI: 10.1055/a-2189-0166", "10.1055/a-2189-0166"),
        ("10.1002%2Fabc", "10.1002/abc"),
        ("https://doi.org/10.1002%2Fabc.123", "10.1002/abc.123"),
        ("  10.1016/0005-2795(76)90109-4.  ", "10.1016/0005-2795(76)90109-4"),
        ("10.1000/xyz123,", "10.1000/xyz123"),
        ("", None),
        (None, None),
        ("11.1000/xyz", None),
        ("10.12/too-short-prefix", None),
        ("not a doi", None),
        ("10.1000/with space", None),
    ],
)
def test_normalize_doi(raw: str | None, expected: str | None) -> None:
    assert normalize_doi(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("38048813", "38048813"),
        (" 9997 ", "9997"),
        ("PMID: 38534005", "38534005"),
        ("https://pubmed.ncbi.nlm.nih.gov/38534005/", "38534005"),
        ("https://www.ncbi.nlm.nih.gov/pubmed/38534005", "38534005"),
        ("0038534005", "38534005"),
        ("0", None),
        ("PMC6022861", None),
        ("12a", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_pmid(raw: str | None, expected: str | None) -> None:
    assert normalize_pmid(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("PMC6022861", "PMC6022861"),
        ("pmc6022861", "PMC6022861"),
        ("6022861", "PMC6022861"),
        ("PMC6022861.1", "PMC6022861"),
        ("https://www.ncbi.nlm.nih.gov/pmc/articles/PMC6022861/", "PMC6022861"),
        ("https://pmc.ncbi.nlm.nih.gov/articles/PMC11114038/", "PMC11114038"),
        ("PMC", None),
        ("PMCabc", None),
        (None, None),
    ],
)
def test_normalize_pmcid(raw: str | None, expected: str | None) -> None:
    assert normalize_pmcid(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2101.00001", "2101.00001"),
        ("arXiv:2101.00001v2", "2101.00001"),
        ("https://arxiv.org/abs/2101.00001v3", "2101.00001"),
        ("http://arxiv.org/pdf/2101.00001v1.pdf", "2101.00001"),
        ("https://export.arxiv.org/abs/0704.0001", "0704.0001"),
        ("10.48550/arXiv.2101.00001", "2101.00001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("arXiv:hep-th/9901001v1", "hep-th/9901001"),
        ("math.gt/0309136", "math.GT/0309136"),
        ("https://arxiv.org/abs/cond-mat/0102536v1", "cond-mat/0102536"),
        ("21010.0001", None),
        ("hep-th/990100", None),
        (None, None),
    ],
)
def test_normalize_arxiv(raw: str | None, expected: str | None) -> None:
    assert normalize_arxiv(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-4590-7461", "0000-0002-4590-7461"),
        ("http://orcid.org/0000-0003-3525-2788/", "0000-0003-3525-2788"),
        ("0000000218250097", "0000-0002-1825-0097"),
        ("0000-0002-3282-232x", "0000-0002-3282-232X"),  # check digit X
        ("0000-0002-1825-0098", None),  # wrong check digit
        ("0000-0002-1825", None),
        (None, None),
    ],
)
def test_normalize_orcid(raw: str | None, expected: str | None) -> None:
    assert normalize_orcid(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<i>in vitro</i> study", "in vitro study"),
        ("H<sub>2</sub>O and CO<sub>2</sub>", "H₂O and CO₂"),
        ("m<sup>6</sup>A sites", "m⁶A sites"),
        ("Aerococcus &amp; <b>A. sanguinicola</b>", "Aerococcus & A. sanguinicola"),
        ("&#x3b1;1-microglobulin", "α1-microglobulin"),
        ("no markup &amp; entity", "no markup & entity"),
        ("  spread \n out\t text ", "spread out text"),
        ("p<0.05 vs <i>p</i> < 0.01", "p<0.05 vs p < 0.01"),
        (
            "<jats:title>Background</jats:title><jats:p>First.</jats:p><jats:p>Second.</jats:p>",
            "Background First. Second.",
        ),
        ("<p>a</p><!-- note --><p>b</p>", "a b"),
        ("<i> </i>", None),
        ("", None),
        (None, None),
    ],
)
def test_markup_to_text(raw: str | None, expected: str | None) -> None:
    assert markup_to_text(raw) == expected


def test_markup_to_text_writes_mathml_compactly() -> None:
    # Shaped like the MathML in PubMed 29963580 (efetch_pubmed_collective_author_mathml.xml).
    isotope = (
        '<mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mrow>'
        "<mml:mmultiscripts><mml:mrow><mml:mi>He</mml:mi></mml:mrow><mml:mprescripts/>"
        "<mml:none/><mml:mrow><mml:mn>3</mml:mn></mml:mrow></mml:mmultiscripts>"
        "<mml:mtext> </mml:mtext><mml:mi>MRI</mml:mi></mml:mrow></mml:math>"
    )
    assert markup_to_text(f"inhaled {isotope} ventilation") == "inhaled ³He MRI ventilation"
    fraction = (
        "<math><mfrac><mi>a</mi><mn>2</mn></mfrac><annotation>\\frac{a}{2}</annotation></math>"
    )
    assert markup_to_text(f"ratio {fraction}") == "ratio a/2"


def test_markup_to_text_skips_the_parser_without_markup() -> None:
    text = "A plain abstract sentence with no markup at all. " * 200
    started = time.perf_counter()
    for _ in range(2000):
        markup_to_text(text)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" a \u00a0 b\n", "a b"), ("", None), ("  \n", None), (None, None)],
)
def test_collapse_whitespace(raw: str | None, expected: str | None) -> None:
    assert collapse_whitespace(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jan", 1),
        ("January", 1),
        ("sept.", 9),
        ("Dec", 12),
        ("01", 1),
        ("1", 1),
        (12, 12),
        ("Spring", 3),
        ("Summer", 6),
        ("Fall", 9),
        ("Autumn", 9),
        ("Winter", 1),  # documented choice: the first issue of the volume-year
        ("13", None),
        (0, None),
        ("Smarch", None),
        (None, None),
    ],
)
def test_month_number(raw: str | int | None, expected: int | None) -> None:
    assert month_number(raw) == expected


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("2020",), "2020"),
        ((2020, "Jun"), "2020-06"),
        (("2020", "06", "15"), "2020-06-15"),
        (("2024", "Aug", "27"), "2024-08-27"),
        (("1990", "Spring"), "1990-03"),
        (("2023", "Feb", "30"), "2023-02"),  # no such day: month kept
        (("2024", "Feb", "29"), "2024-02-29"),
        (("2020", None, "15"), "2020"),
        (("2020", "Foo", "15"), "2020"),
        ((None, "Jun"), None),
        (("20",), None),
        (("",), None),
    ],
)
def test_partial_date(parts: tuple[str | int | None, ...], expected: str | None) -> None:
    assert partial_date(*parts) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019 Nov-Dec", (2019, "2019-11")),
        ("1998 Dec-1999 Jan", (1998, "1998-12")),
        ("2000 Spring", (2000, "2000-03")),
        ("1975-1976", (1975, "1975")),
        ("2010 Jul 1-15", (2010, "2010-07-01")),
        ("2002 Spring-Summer", (2002, "2002-03")),
        ("1983 Jan 13-19", (1983, "1983-01-13")),
        ("2001 1st Quart", (2001, "2001")),
        ("Winter 1999", (1999, "1999")),
        ("", (None, None)),
        (None, (None, None)),
        ("undated", (None, None)),
    ],
)
def test_parse_medline_date(text: str | None, expected: tuple[int | None, str | None]) -> None:
    assert parse_medline_date(text) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("293", "305"), "293-305"),
        (("1653", "1786", "1653-1786"), "1653-1786"),
        (("487",), "487"),
        (("487", "487"), "487"),
        ((None, None, "1148-63"), "1148-1163"),
        ((None, None, "113-25"), "113-125"),
        ((None, None, "179-91"), "179-191"),
        ((None, None, "e1234"), "e1234"),
        ((None, None, "026002"), "026002"),
        ((None, None, "S1-5"), "S1-S5"),
        ((None, None, "S69-S73"), "S69-S73"),
        ((None, None, "1148\u201363"), "1148-1163"),
        ((None, None, "12 - 9"), "12-19"),
        ((None, None, "iii-iv"), "iii-iv"),
        ((None, None, "1148-63; discussion 1164-5"), "1148-1163; discussion 1164-1165"),
        (("1148", "63"), "1148-1163"),
        ((None, None, None), None),
        (("", "", " "), None),
    ],
)
def test_normalize_pages(args: tuple[str | None, ...], expected: str | None) -> None:
    assert normalize_pages(*args) == expected


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("Yip, Jesse W C", ("Yip", "Jesse W C")),
        ("Jesse W C Yip", ("Yip", "Jesse W C")),
        ("Yip JWC", ("Yip", "JWC")),
        ("Ludwig van Beethoven", ("van Beethoven", "Ludwig")),
        ("Pestel-Caron, Martine", ("Pestel-Caron", "Martine")),
        ("Martin Luther King Jr.", ("King", "Martin Luther")),
        ("King, Martin Luther, Jr.", ("King", "Martin Luther")),
        ("Plato", ("Plato", None)),
        ("  ", (None, None)),
        (None, (None, None)),
    ],
)
def test_split_name(full: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_name(full) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("eng", "en"), ("ger", "de"), ("spa", "es"), ("FRE", "fr"), ("xyz", "xyz"), ("und", None)],
)
def test_language_code(raw: str, expected: str | None) -> None:
    assert language_code(raw) == expected


# --- superscripts and subscripts (issue 11.9) ------------------------------------------------


def _crossref_reference_title(file: str, start: str) -> str:
    """A real ``article-title`` of a reference in a recorded Crossref page (JATS markup)."""
    data = json.loads((require_shared() / file).read_bytes())
    titles = [
        ref["article-title"]
        for item in data["message"]["items"]
        for ref in item.get("reference", [])
        if ref.get("article-title", "").startswith(start)
    ]
    assert titles, start
    return str(titles[0])


def test_superscripts_and_subscripts_stay_readable_in_real_titles() -> None:
    title = _crossref_reference_title(
        "updates/crossref/journals_1932-6203_works_rows30_cursor_page1_8_correction_notices.json",
        "Ca<sup>2+</sup>/Mg<sup>2+</sup>",
    )
    assert markup_to_text(title).startswith("Ca²⁺/Mg²⁺ Exchange in Parvalbumin")  # type: ignore[union-attr]
    assert markup_to_text("<sup>99m</sup>Tc-MAG3 scans") == "⁹⁹ᵐTc-MAG3 scans"
    assert markup_to_text("Hydrogen sulfide (H<sub>2</sub>S)") == "Hydrogen sulfide (H₂S)"
    assert markup_to_text("(F<sub>1</sub>=0.220 vs F<sub>1</sub>=0.155)") == (
        "(F₁=0.220 vs F₁=0.155)"
    )
    # what has no superscript form is marked, not run into the text ("research.123 Clinical")
    assert markup_to_text("scientific research.<sup>1,2,3</sup> Clinical trials") == (
        "scientific research.^{1,2,3} Clinical trials"
    )
    assert markup_to_text("V<sub>O2</sub>max") == "V_{O2}max"
    assert markup_to_text("Tween<sup>®</sup> 80") == "Tween® 80"
    assert markup_to_text("x<sup> </sup>y") == "xy"
    # the same in a structured abstract, and in the plain-text fields of preprint servers
    assert markup_sections("<p><b>Methods:</b> CO<sub>2</sub> levels</p>")[0].text == "CO₂ levels"
    assert strip_markup("m<sup>6</sup>A sites for $n<k$") == "m⁶A sites for $n<k$"
    assert (superscript("2+"), subscript("12"), superscript("-1"), superscript("A")) == (
        "²⁺",
        "₁₂",
        "⁻¹",
        "^{A}",
    )


def test_mathml_scripts_are_written_as_scripts() -> None:
    msup = (
        "<math><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><msub><mi>y</mi><mn>0</mn></msub></math>"
    )
    assert markup_to_text(msup) == "x²+y₀"
    both = "<math><msubsup><mi>C</mi><mn>1</mn><mn>3</mn></msubsup></math>"
    assert markup_to_text(both) == "C₁³"
    uranium = (
        "<math><mmultiscripts><mi>U</mi><mprescripts/><mn>92</mn><mn>235</mn>"
        "</mmultiscripts></math>"
    )
    assert markup_to_text(uranium) == "₉₂²³⁵U"


def test_scripts_still_match_and_fold_as_plain_digits() -> None:
    # Query matching and dedup fold NFKD: "³He" is "3He" to both.
    record = Record(source="pubmed", title="inhaled ³He/¹²⁹Xe MRI ventilation in H₂O")
    assert parse_query('"3He 129Xe" AND H2O').match(record)
    assert fold("inhaled ³He/¹²⁹Xe") == fold("inhaled 3He/129Xe") == "inhaled 3he 129xe"
