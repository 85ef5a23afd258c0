"""The web console: managers and CS act on alerts and orders from a phone (issue 20).

An entry layer beside flows/: it reads Settings through the one composition root (flows.runtime.Runtime) and calls
the same outbox and desk operations as the CLI. Only console.app imports FastAPI; links, accounts, access and the
secret are plain functions the digest and the CLI can use too.
"""
