"""Dialects: the seed products' APIs, each a thin translation onto the bus commands the native API sends.

Each dialect has its own folder and keeps nothing of its own: every name it shows (a Segments.ai
`owner/dataset`, a Hasty project id) is read from, and written to, the services that own the concept.
`native.ask` is how a dialect handler sends a command as the request's caller.
"""
