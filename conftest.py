"""Hook the kernel harness into pytest (guest-tests/c/*.c become tests per kernel)."""

pytest_plugins = ["harness.plugin.hooks"]
