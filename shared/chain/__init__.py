"""Following the chain: reading the Stacks API database, applying blocks, undoing re-orgs.

How it works: docs/chain-monitor.md.
"""
