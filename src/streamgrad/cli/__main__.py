"""`python -m streamgrad.cli ...`."""

from streamgrad.cli import main

main()
