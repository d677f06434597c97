"""`python -m nexus_ls`: the language server on stdio, for an editor given an interpreter."""

import sys

from nexus_ls.cli import serve_main

sys.exit(serve_main())
