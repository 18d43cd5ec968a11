"""A replayed guest: recorded real consoles and scripted answers instead of a booted kernel.

``script`` holds the records (what the console prints, how the guest answers),
``machine`` the backend and machine that play them, ``channel`` the scripted
Channel, ``scenario`` a scenario file read into a script, and ``plugin`` the
pytest plugin that lets kernels.yaml name ``replay:`` kernels and the
``replay`` backend (for the plumbing tests; a user never sees it).
"""
