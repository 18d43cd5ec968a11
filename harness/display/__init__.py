"""What a person sees: progress lines, the live line, untrusted text made printable."""
