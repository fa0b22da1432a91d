"""The Throughline journey engine: a library with no web framework in it."""
