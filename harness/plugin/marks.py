"""The marks every harness pytest item carries, whatever kind of guest test it is.

One place for them, so a reproducer, a shell test, a kselftest and a KUnit
glob agree on what ``expect:`` in kernels.yaml means and on how xdist keeps a
kernel's items together.
"""

from __future__ import annotations

import pytest

from harness.config import KernelSpec
from harness.outcome import EXCEPTIONS


def mark_for_kernel(item: pytest.Item, spec: KernelSpec, expect_key: str | None) -> pytest.Item:
    """Put ``item`` in its kernel's xdist group and apply ``spec.expect[expect_key]``.

    The group keeps all items of a kernel on one worker and one boot (the
    scheduler in :mod:`harness.plugin.xdist` reads the kernel from the node id
    too).  An expectation is a *strict* xfail raising exactly the outcome's
    exception: a kernel that stops failing, or fails differently, is reported.
    A KUnit item (``expect_key`` None) judges its cases itself.
    """
    item.add_marker(pytest.mark.xdist_group(spec.name))
    expect = spec.expect.get(expect_key) if expect_key is not None else None
    if expect is not None:
        item.add_marker(
            pytest.mark.xfail(
                reason=f"{expect.outcome.value}: {expect.reason}",
                raises=EXCEPTIONS[expect.outcome],
                strict=True,
            )
        )
    return item
