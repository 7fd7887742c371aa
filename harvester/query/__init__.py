"""The portable query: its syntax (parse), its local evaluator (match) and its translation into
each API's own query language (translate). Pure: no I/O.
"""
