"""``python -m gradflow.studies``: see :mod:`gradflow.studies.every`."""

from .every import main

raise SystemExit(main())
