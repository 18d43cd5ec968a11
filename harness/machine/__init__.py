"""Booting kernels: the Backend/Machine/Channel seams and their implementations.

``base.py`` holds the protocols and the records that cross them;
``backends.py`` the table of backends by name; one module per backend
(``qemu.py``, ``virtme.py``) and per channel (``ssh.py``); the tests' replay
machine lives in tests/support/replay.  Shared parts: ``accel.py`` (KVM or
TCG), ``console.py`` (the console watcher), ``process.py`` (start and stop a
process tree for sure), ``monitor.py`` (the magic key), ``ports.py``.
"""
