"""One module per check, named after the bad state it detects; the registry lists them."""
