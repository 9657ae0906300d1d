"""Everything the API reads: tokens, search, the FT list, status and progress."""
