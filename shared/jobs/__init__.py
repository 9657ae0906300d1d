"""The job engine: job rows and their transitions, running, leases, recovery and dispatch.

How it works: docs/job-engine.md.
"""
