"""The Qt-free engine: scanning, decoding, embedding, cache, sorting, heads, export.

Nothing in this package imports Qt; the GUI (:mod:`photosort.gui`) and the CLI
(:mod:`photosort.cli`) are thin layers over it.
"""
