"""Two TLS endpoints joined in memory, for the TLS tests (not a test module)."""


def pump(a, b, rounds=12):
    """Shuttle bytes between two endpoints until quiet, at most ``rounds`` times; return (events
    of a, events of b)."""
    ev_a, ev_b = [], []
    for _ in range(rounds):
        out_a = a.data_to_send()
        if out_a:
            ev_b += b.receive_data(out_a)
        out_b = b.data_to_send()
        if out_b:
            ev_a += a.receive_data(out_b)
        if not out_a and not out_b:
            break
    return ev_a, ev_b
