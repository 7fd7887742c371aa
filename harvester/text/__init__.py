"""Text: pure functions from the raw strings a source sends to normalized values.

Identifiers (DOI, PMID, PMCID, arXiv), the one markup/JATS/MathML-to-text walk, dates, pages and
names, and the case/diacritic folding every comparison uses. No I/O, no SQLAlchemy, no httpx.
"""
