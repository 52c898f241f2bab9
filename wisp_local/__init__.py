"""Wisp on one machine: what ``make run`` and the tests need, and a deployed function never runs.

``chalice package`` ships ``app.py`` and ``chalicelib/`` whole, so nothing local-only lives there
(STYLE.md rule 17). This package sits beside ``chalicelib`` and may import it; ``chalicelib`` never
imports this package (``tests/infra/test_bundle.py`` checks both, and the built bundle).

* ``stack``: ``make run`` (``python -m wisp_local``): local AWS, bootstrap, the API, one runner, the schedules.
* ``emulated_aws``: moto's server behind one lock, its state kept in a snapshot and a journal.
* ``devserver``: patches of Chalice's local gateway so that it routes and decodes like API Gateway.
* ``landing``: serves the built web app (``web/dist``) at ``/``, where the links in mails lead.
"""
