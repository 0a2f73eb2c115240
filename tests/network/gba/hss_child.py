"""Child process of test_hss.py's crash test: hands out AVs from an HSS on a SQLite file and writes
each handed-out SQN (hex) to stdout, flushed, as soon as generate_av returned it.

argv: db impi count mode block
- mode "commit-first": the real SubscriberStore (commit before the AV exists);
- mode "defer": a broken store that commits a SEQ only at the start of the next call (the bug the
  test must catch);
- block "1": after each SQN, wait for a line on stdin (the parent kills the child while it waits).
"""
import random
import sys

from dmsim.network.gba.hss import Hss
from dmsim.network.gba.hss_store import SubscriberStore


class DeferredCommitStore(SubscriberStore):
    """The wrong order: the new SEQ is returned first and committed on the next call."""

    pending = None

    def next_seq(self, impi):
        if self.pending is not None:
            self.set_seq(*self.pending)
        seq = self.get(impi).seq_he + 1 if self.pending is None else self.pending[1] + 1
        self.pending = (impi, seq)
        return seq


def main():
    db, impi, count, mode, block = sys.argv[1:6]
    store = SubscriberStore(db) if mode == "commit-first" else DeferredCommitStore(db)
    hss = Hss(store, random.Random(1).randbytes)
    for _ in range(int(count)):
        av = hss.generate_av(impi)
        sys.stdout.write(av.sqn.hex() + "\n")
        sys.stdout.flush()
        if block == "1":
            sys.stdin.readline()


if __name__ == "__main__":
    main()
