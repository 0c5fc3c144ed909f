"""Quickcall: ring a device, then connect it to a number (click-to-dial).

``numberfilter``, ``options`` and ``payload`` are pure (the originate payload Kazoo's
``cb_quickcall`` builds); ``service`` reads the device and puts them together.
"""
