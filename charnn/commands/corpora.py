"""``charnn corpora``: the built-in corpora."""

from __future__ import annotations


def cmd_corpora(args) -> int:
    from charnn.corpora.catalog import print_catalog

    print_catalog()
    return 0
