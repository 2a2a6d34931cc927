"""`python -m auditor` runs the kp-audit command line."""

from auditor.cli import main

main()
