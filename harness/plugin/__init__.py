"""The pytest layer of the harness; pytest loads :mod:`harness.plugin.hooks`.

Where things are: ``hooks`` (only the hooks), ``options``, ``state`` (the
session state under its StashKey), ``items`` (the one item base class),
``kinds`` (the table of item kinds) and one ``kind_*`` module per kind,
``rundir``, ``progress`` and ``relay``, ``shipping`` with its ``outbox`` and
``inbox``, ``summary``, ``marks``, and the xdist glue (``xdist``,
``xdist_controller``).
"""
