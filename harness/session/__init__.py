"""A kernel's session: its guest's life across the tests that run on it.

One module per concern (see :mod:`harness.session.guest` for the order of
things); what callers use is re-exported here.
"""

from harness.session.context import RunContext, new_context
from harness.session.guest import KernelGuest, guest_command
from harness.session.policy import Policy

__all__ = ["KernelGuest", "Policy", "RunContext", "guest_command", "new_context"]
