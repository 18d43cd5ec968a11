"""The guest side built on the host: initramfs layers, modules, keys, test binaries."""
