"""A stub sixth provider, "acme": the three files a provider has and its one registry line.

`acme.py` is its data source, `acme_emulator.py` its emulator (sharing no code with the
data source), `test_acme.py` its emulator's contract tests opening with its knowledge
block; `registry.py` adds its registry line for one pytest run, and
`test_sixth_provider.py` runs every suite parametrized over the kinds on it.
"""
