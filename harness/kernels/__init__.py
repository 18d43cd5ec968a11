"""Kernel providers: where a candidate kernel comes from.

:mod:`harness.kernels.base` holds the records every provider shares
(:class:`~harness.kernels.base.KernelImage`), :mod:`harness.kernels.registry`
the table of providers by kernels.yaml key; one module per provider.
"""
