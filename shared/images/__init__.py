"""Token images: decoding and resizing untrusted bytes, and where the results are stored."""
