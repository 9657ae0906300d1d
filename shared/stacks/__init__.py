"""Clients of the Stacks chain: the node RPC and the Stacks Blockchain API database."""
