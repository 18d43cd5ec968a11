"""Booting a kernel under QEMU: accelerator choice, ports, command line, lifecycle."""
