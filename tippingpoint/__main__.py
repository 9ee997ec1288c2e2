"""``python -m tippingpoint``: the command line."""

from tippingpoint.cli import main

main()
