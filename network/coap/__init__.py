"""dmsim.network.coap: the Constrained Application Protocol (RFC 7252) that LwM2M runs on.

Sans-IO: ``message`` (the datagram codec), ``reliability`` (CON retransmission and duplicate
detection, RFC 7252 §4.2-§4.5, as timers out and datagrams in), ``link_format`` (RFC 6690, the
object list of an LwM2M Register).
"""
