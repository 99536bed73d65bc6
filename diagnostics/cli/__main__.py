"""python -m diagnostics.cli ... runs `diag ...`."""
from .main import main

main()
