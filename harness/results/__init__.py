"""Typed records of a results directory's files: one module per file, each a frozen
dataclass with a schema version, ``to_json`` and ``from_json``, so readers never pick
through dicts."""
