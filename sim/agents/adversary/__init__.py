"""The adversary (issue 16): an agent that can sit on any link or interface of a replica, and the
catalogue of attacks it runs (``catalogue.py``, ``attacks/``), each judged into an ``Outcome``."""
