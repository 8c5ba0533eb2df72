"""Responders: acknowledgments to customers and notifications to staff.

One module per platform or notifier behind the small interface of
:mod:`responders.base`; :mod:`responders.registry` maps channels and ``notify`` URI
schemes to them; :mod:`responders.delivery` owns the ledger, rate limits, retries and
dead letters; :mod:`responders.fakes` ships a local fake of every platform.
"""
