"""The kinds of guest test: C and shell definitions, their compilation, KTAP, KUnit, kselftests."""
