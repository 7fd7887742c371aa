"""The portable query, pure (no I/O, no SQLAlchemy, no httpx).

- ``syntax``: the tree (Term, And, Or, Not), the parser, ``Query``;
- ``match``: the local evaluator's record index (a record tokenized once), ``Hit``, ``Match``;
- ``presearch``: ``TopicIndex``, which files every topic's query under the words a matching
  record must contain, so a record meets only its candidate topics; ``screen`` compiles each
  candidate's cheap word test; the exact evaluator confirms, so answers equal every-pair
  evaluation;
- ``translate``: each API's own query language (broader than the local query, never narrower).

Imports: ``harvester.records``, ``harvester.text``, ``harvester.errors`` only.
"""
