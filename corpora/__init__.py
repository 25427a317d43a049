"""Built-in corpora: a catalog of names and the builders that gather their text."""
