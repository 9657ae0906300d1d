"""Fetching and parsing SIP-016 token metadata from untrusted URIs."""
